// fabric-samples' asset-transfer-events application flow (chaincode events with a start
// block, then resumed from a checkpoint), written again in plain JavaScript and run by the
// Rust tests against a cchost node with the real @hyperledger/fabric-gateway client.
// Environment as gateway-app.js. Prints one JSON line per step.

'use strict';

const grpc = require('@grpc/grpc-js');
const { connect, checkpointers, hash, signers } = require('@hyperledger/fabric-gateway');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const env = (name) => {
    const value = process.env[name];
    if (value === undefined) {
        throw new Error(`${name} is not set`);
    }
    return value;
};
const firstFile = (dir) => path.join(dir, fs.readdirSync(dir).sort()[0]);
const print = (step, value) => console.log(JSON.stringify({ step, ...value }));
const utf8 = new TextDecoder();
const summary = (event) => ({
    eventName: event.eventName,
    blockNumber: event.blockNumber.toString(),
    transactionId: event.transactionId,
    payload: JSON.parse(utf8.decode(event.payload)),
});

async function main() {
    const client = new grpc.Client(env('PEER_ENDPOINT'), grpc.credentials.createInsecure());
    const gateway = connect({
        client,
        identity: {
            mspId: env('MSP_ID'),
            credentials: fs.readFileSync(firstFile(env('CERT_DIRECTORY_PATH'))),
        },
        signer: signers.newPrivateKeySigner(
            crypto.createPrivateKey(fs.readFileSync(firstFile(env('KEY_DIRECTORY_PATH')))),
        ),
        hash: hash.sha256,
    });
    try {
        const network = gateway.getNetwork(env('CHANNEL_NAME'));
        const name = env('CHAINCODE_NAME');
        const contract = network.getContract(name);
        const assetId = 'asset1';

        const created = await contract.submitAsync('CreateAsset', {
            arguments: [assetId, 'blue', '10', 'Sally', '200'],
        });
        const startBlock = (await created.getStatus()).blockNumber;
        print('CreateAsset', { blockNumber: startBlock.toString(), transactionId: created.getTransactionId() });
        await contract.submitTransaction('TransferAsset', assetId, 'Mary');
        print('TransferAsset', { ok: true });

        // Events from the start block; the first one checkpointed.
        const checkpointer = checkpointers.inMemory();
        const first = await network.getChaincodeEvents(name, { startBlock });
        try {
            for await (const event of first) {
                print('event', summary(event));
                await checkpointer.checkpointChaincodeEvent(event);
                break;
            }
        } finally {
            first.close();
        }
        // Resumed from the checkpoint: the next event, not the first again.
        const resumed = await network.getChaincodeEvents(name, { checkpoint: checkpointer });
        try {
            for await (const event of resumed) {
                print('resumed', summary(event));
                break;
            }
        } finally {
            resumed.close();
        }
    } finally {
        gateway.close();
        client.close();
    }
}

main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
});
