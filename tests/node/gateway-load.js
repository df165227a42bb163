// Throughput of a Gateway with the real @hyperledger/fabric-gateway client: `evaluate`
// (ReadAsset) or `submit` (TransferAsset, submitTransaction: endorse, sign, submit, wait
// for the commit status) of fabric-samples' asset-transfer-basic, COUNT transactions with
// CONCURRENCY in flight. Environment as gateway-app.js (TLS_CERT_PATH optional), plus
//   MODE=evaluate|submit  CONCURRENCY=16  COUNT=2000
// Prints one JSON line: {mode, concurrency, count, errors, seconds, tps, p50_ms, p99_ms}.

'use strict';

const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const env = (name, fallback) => {
    const value = process.env[name] ?? fallback;
    if (value === undefined) {
        throw new Error(`${name} is not set`);
    }
    return value;
};
const firstFile = (dir) => path.join(dir, fs.readdirSync(dir).sort()[0]);

async function main() {
    const tlsCert = process.env.TLS_CERT_PATH;
    const credentials = tlsCert
        ? grpc.credentials.createSsl(fs.readFileSync(tlsCert))
        : grpc.credentials.createInsecure();
    const options = tlsCert ? { 'grpc.ssl_target_name_override': env('PEER_HOST_ALIAS') } : {};
    const client = new grpc.Client(env('PEER_ENDPOINT'), credentials, options);
    const gateway = connect({
        client,
        identity: { mspId: env('MSP_ID'), credentials: fs.readFileSync(firstFile(env('CERT_DIRECTORY_PATH'))) },
        signer: signers.newPrivateKeySigner(
            crypto.createPrivateKey(fs.readFileSync(firstFile(env('KEY_DIRECTORY_PATH')))),
        ),
        hash: hash.sha256,
    });
    const mode = env('MODE', 'evaluate');
    const concurrency = Number(env('CONCURRENCY', '16'));
    const count = Number(env('COUNT', '2000'));
    try {
        const contract = gateway.getNetwork(env('CHANNEL_NAME')).getContract(env('CHAINCODE_NAME'));
        // Each worker its own asset: submits do not conflict with one another.
        await contract.submitTransaction('InitLedger');
        for (let w = 0; w < concurrency; w++) {
            const exists = new TextDecoder().decode(await contract.evaluateTransaction('AssetExists', `load${w}`));
            if (exists !== 'true') {
                await contract.submitTransaction('CreateAsset', `load${w}`, 'grey', '1', 'L', '1');
            }
        }
        const latencies = [];
        let errors = 0;
        let next = 0;
        const worker = async (w) => {
            while (next < count) {
                const i = next++;
                const started = process.hrtime.bigint();
                try {
                    if (mode === 'submit') {
                        await contract.submitTransaction('TransferAsset', `load${w}`, `owner${i}`);
                    } else {
                        await contract.evaluateTransaction('ReadAsset', `load${w}`);
                    }
                    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
                } catch (e) {
                    errors++;
                    if (errors === 1) {
                        console.error(e);
                    }
                }
            }
        };
        const started = process.hrtime.bigint();
        await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        latencies.sort((a, b) => a - b);
        const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
        console.log(JSON.stringify({
            mode,
            concurrency,
            count: latencies.length,
            errors,
            seconds: Number(seconds.toFixed(3)),
            tps: Math.round(latencies.length / seconds),
            p50_ms: Number(at(0.5).toFixed(2)),
            p99_ms: Number(at(0.99).toFixed(2)),
        }));
    } finally {
        gateway.close();
        client.close();
    }
}

main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
});
