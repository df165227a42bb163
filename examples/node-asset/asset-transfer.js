// fabric-samples' asset-transfer-basic (chaincode-javascript) with fabric-contract-api
// only: the same transactions and answers as the Rust examples/asset-transfer, so that
// `cchost bench` compares one contract's logic across runtimes. The sample's two helper
// packages (json-stringify-deterministic, sort-keys-recursive) are replaced by `sorted`,
// which gives the same bytes for these flat objects.
'use strict';

const { Contract } = require('fabric-contract-api');

// JSON with keys in sorted order, as the sample stores assets.
function sorted(value) {
    if (Array.isArray(value)) {
        return `[${value.map(sorted).join(',')}]`;
    }
    if (value !== null && typeof value === 'object') {
        const keys = Object.keys(value).sort();
        return `{${keys.map((k) => `${JSON.stringify(k)}:${sorted(value[k])}`).join(',')}}`;
    }
    return JSON.stringify(value);
}

const SEED = [
    ['asset1', 'blue', 5, 'Tomoko', 300],
    ['asset2', 'red', 5, 'Brad', 400],
    ['asset3', 'green', 10, 'Jin Soo', 500],
    ['asset4', 'yellow', 10, 'Max', 600],
    ['asset5', 'black', 15, 'Adriana', 700],
    ['asset6', 'white', 15, 'Michel', 800],
];

class AssetTransfer extends Contract {
    constructor() {
        super('AssetTransfer');
    }

    async InitLedger(ctx) {
        for (const [ID, Color, Size, Owner, AppraisedValue] of SEED) {
            const asset = { ID, Color, Size, Owner, AppraisedValue, docType: 'asset' };
            await ctx.stub.putState(ID, Buffer.from(sorted(asset)));
        }
    }

    async CreateAsset(ctx, id, color, size, owner, appraisedValue) {
        if (await this.AssetExists(ctx, id)) {
            throw new Error(`The asset ${id} already exists`);
        }
        const asset = { ID: id, Color: color, Size: size, Owner: owner, AppraisedValue: appraisedValue };
        await ctx.stub.putState(id, Buffer.from(sorted(asset)));
        return JSON.stringify(asset);
    }

    async ReadAsset(ctx, id) {
        const json = await ctx.stub.getState(id);
        if (!json || json.length === 0) {
            throw new Error(`The asset ${id} does not exist`);
        }
        return json.toString();
    }

    async AssetExists(ctx, id) {
        const json = await ctx.stub.getState(id);
        return json && json.length > 0;
    }

    async TransferAsset(ctx, id, newOwner) {
        const asset = JSON.parse(await this.ReadAsset(ctx, id));
        const oldOwner = asset.Owner;
        asset.Owner = newOwner;
        await ctx.stub.putState(id, Buffer.from(sorted(asset)));
        return oldOwner;
    }
}

module.exports = { AssetTransfer };
