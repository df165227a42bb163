// fabric-samples' asset-transfer-basic application flow (application-gateway-typescript,
// written again in plain JavaScript), run by the Rust tests against a cchost node with the
// real @hyperledger/fabric-gateway client. Connection settings come from the environment,
// as the sample's do: PEER_ENDPOINT, TLS_CERT_PATH (empty: plaintext), PEER_HOST_ALIAS,
// CERT_DIRECTORY_PATH, KEY_DIRECTORY_PATH, MSP_ID, CHANNEL_NAME, CHAINCODE_NAME.
// Prints one JSON line per step.

'use strict';

const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');
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
const utf8 = new TextDecoder();
const print = (step, value) => console.log(JSON.stringify({ step, ...value }));

async function main() {
    const tlsCertPath = process.env.TLS_CERT_PATH || '';
    const credentials = tlsCertPath
        ? grpc.credentials.createSsl(fs.readFileSync(tlsCertPath))
        : grpc.credentials.createInsecure();
    const options = tlsCertPath ? { 'grpc.ssl_target_name_override': env('PEER_HOST_ALIAS') } : {};
    const client = new grpc.Client(env('PEER_ENDPOINT'), credentials, options);
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
        evaluateOptions: () => ({ deadline: Date.now() + 5000 }),
        endorseOptions: () => ({ deadline: Date.now() + 15000 }),
        submitOptions: () => ({ deadline: Date.now() + 5000 }),
        commitStatusOptions: () => ({ deadline: Date.now() + 60000 }),
    });
    try {
        const network = gateway.getNetwork(env('CHANNEL_NAME'));
        const contract = network.getContract(env('CHAINCODE_NAME'));
        const assetId = `asset${Date.now()}`;

        await contract.submitTransaction('InitLedger');
        print('InitLedger', { ok: true });

        const all = JSON.parse(utf8.decode(await contract.evaluateTransaction('GetAllAssets')));
        print('GetAllAssets', { ids: all.map((a) => a.ID) });

        await contract.submitTransaction('CreateAsset', assetId, 'yellow', '5', 'Tom', '1300');
        print('CreateAsset', { ok: true });

        const commit = await contract.submitAsync('TransferAsset', {
            arguments: [assetId, 'Saptha'],
        });
        const oldOwner = utf8.decode(commit.getResult());
        const status = await commit.getStatus();
        print('TransferAsset', {
            oldOwner,
            successful: status.successful,
            code: status.code,
            blockNumber: status.blockNumber.toString(),
        });

        const asset = JSON.parse(utf8.decode(await contract.evaluateTransaction('ReadAsset', assetId)));
        print('ReadAsset', { asset });

        try {
            await contract.submitTransaction('UpdateAsset', 'asset70', 'blue', '5', 'Tomoko', '300');
            print('UpdateAsset', { error: null });
        } catch (error) {
            print('UpdateAsset', {
                error: error.constructor.name,
                code: error.code,
                message: error.message,
                details: (error.details || []).map((d) => ({
                    address: d.address,
                    mspId: d.mspId,
                    message: d.message,
                })),
            });
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
