// node-asset: a Node chaincode written with fabric-contract-api, run unmodified by the
// real fabric-shim against cchost. Each transaction exercises one part of the shim
// protocol: state, range iterators (`for await`), pagination, history, events, the
// client identity, chaincode-to-chaincode invocation.
//
// Run it against a cchost chaincode listener (dev mode or launched by cchost):
//   npm ci
//   CORE_CHAINCODE_ID_NAME=asset_1.0:<hash> CORE_PEER_TLS_ENABLED=false \
//     npx fabric-chaincode-node start --peer.address 127.0.0.1:7052
'use strict';

const { Contract } = require('fabric-contract-api');

async function collect(iterator, format) {
    const out = [];
    for await (const result of iterator) {
        out.push(format(result));
    }
    return out;
}

class AssetContract extends Contract {
    constructor() {
        super('asset');
    }

    async put(ctx, key, value) {
        await ctx.stub.putState(key, Buffer.from(value));
        ctx.stub.setEvent('Put', Buffer.from(JSON.stringify({ key, value })));
        return 'ok';
    }

    async get(ctx, key) {
        return (await ctx.stub.getState(key)).toString();
    }

    // One read and one write: the unit of the throughput figure.
    async touch(ctx, key) {
        const value = (await ctx.stub.getState(key)).toString();
        await ctx.stub.putState(key, Buffer.from(`${value}+`));
        return value;
    }

    async del(ctx, key) {
        await ctx.stub.deleteState(key);
        return 'ok';
    }

    async range(ctx, start, end) {
        const keys = await collect(ctx.stub.getStateByRange(start, end), (r) => `${r.key}=${r.value.toString()}`);
        return JSON.stringify(keys);
    }

    async page(ctx, start, end, pageSize, bookmark) {
        const { iterator, metadata } = await ctx.stub.getStateByRangeWithPagination(start, end, parseInt(pageSize, 10), bookmark);
        // The paginated iterator is not async-iterable: walk it with next() and close().
        const keys = [];
        for (let res = await iterator.next(); !res.done; res = await iterator.next()) {
            keys.push(res.value.key);
        }
        await iterator.close();
        return JSON.stringify({ keys, fetched: metadata.fetchedRecordsCount, bookmark: metadata.bookmark });
    }

    async history(ctx, key) {
        const entries = await collect(ctx.stub.getHistoryForKey(key), (m) => ({
            txId: m.txId, value: m.value.toString(), isDelete: m.isDelete,
        }));
        return JSON.stringify(entries);
    }

    async whoami(ctx) {
        const identity = ctx.clientIdentity;
        return JSON.stringify({
            id: identity.getID(),
            mspid: identity.getMSPID(),
            seconds: Math.floor(ctx.stub.getDateTimestamp().getTime() / 1000),
            binding: ctx.stub.getBinding(),
            txid: ctx.stub.getTxID(),
            channel: ctx.stub.getChannelID(),
        });
    }

    // fabric-contract-api counts declared parameters (no rest parameters): one argument.
    async invoke(ctx, chaincode, fn, arg) {
        const response = await ctx.stub.invokeChaincode(chaincode, [fn, arg], '');
        return JSON.stringify({
            status: response.status, message: response.message, payload: Buffer.from(response.payload).toString(),
        });
    }

    async sleep(ctx, ms) {
        await new Promise((resolve) => setTimeout(resolve, parseInt(ms, 10)));
        return 'awake';
    }
}

module.exports.contracts = [AssetContract, require('./asset-transfer').AssetTransfer];
