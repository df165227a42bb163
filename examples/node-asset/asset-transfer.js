// The logic of fabric-samples' asset-transfer-basic (chaincode-javascript, as of
// fabric-samples commit c9b221e4), written for cchost's tests and benchmark (the sample's
// files are not copied into this repository): the same transactions, stored bytes and answers, with the
// sample's own helper packages (json-stringify-deterministic of sort-keys-recursive for
// everything stored) and its fabric-contract-api behaviour (class-transformer 0.4.0, as
// the sample's npm-shrinkwrap.json pins it). cchost's integration tests run it under the
// real fabric-shim and check that the Rust examples/asset-transfer answers the same.
'use strict';

const stringify = require('json-stringify-deterministic');
const sortKeysRecursive = require('sort-keys-recursive');
const { Contract } = require('fabric-contract-api');

// What the sample stores: keys sorted at every level.
const stored = (value) => Buffer.from(stringify(sortKeysRecursive(value)));

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
            await ctx.stub.putState(ID, stored(asset));
        }
    }

    // Size and AppraisedValue become numbers (`Number(text)`: NaN, stored as null, when
    // the text is not one); the answer keeps the order the asset was built in.
    async CreateAsset(ctx, id, color, size, owner, appraisedValue) {
        if (await this.AssetExists(ctx, id)) {
            throw new Error(`The asset ${id} already exists`);
        }
        const asset = {
            ID: id, Color: color, Size: Number(size), Owner: owner, AppraisedValue: Number(appraisedValue),
        };
        await ctx.stub.putState(id, stored(asset));
        return JSON.stringify(asset);
    }

    async ReadAsset(ctx, id) {
        const json = await ctx.stub.getState(id);
        if (!json || json.length === 0) {
            throw new Error(`The asset ${id} does not exist`);
        }
        return json.toString();
    }

    // Stores the arguments as the strings they are; answers what putState resolves to
    // (the peer's empty RESPONSE payload, as a Buffer).
    async UpdateAsset(ctx, id, color, size, owner, appraisedValue) {
        if (!(await this.AssetExists(ctx, id))) {
            throw new Error(`The asset ${id} does not exist`);
        }
        const asset = { ID: id, Color: color, Size: size, Owner: owner, AppraisedValue: appraisedValue };
        return ctx.stub.putState(id, stored(asset));
    }

    async DeleteAsset(ctx, id) {
        if (!(await this.AssetExists(ctx, id))) {
            throw new Error(`The asset ${id} does not exist`);
        }
        return ctx.stub.deleteState(id);
    }

    async AssetExists(ctx, id) {
        const json = await ctx.stub.getState(id);
        return json && json.length > 0;
    }

    async TransferAsset(ctx, id, newOwner) {
        const asset = JSON.parse(await this.ReadAsset(ctx, id));
        const oldOwner = asset.Owner;
        asset.Owner = newOwner;
        await ctx.stub.putState(id, stored(asset));
        return oldOwner;
    }

    // Every value in key order, parsed (a value that is not JSON stays a string).
    async GetAllAssets(ctx) {
        const all = [];
        for await (const { value } of ctx.stub.getStateByRange('', '')) {
            const text = Buffer.from(value.toString()).toString('utf8');
            try {
                all.push(JSON.parse(text));
            } catch {
                all.push(text);
            }
        }
        return JSON.stringify(all);
    }
}

module.exports = { AssetTransfer };
