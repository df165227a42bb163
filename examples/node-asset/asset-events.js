// The logic of fabric-samples' asset-transfer-events chaincode (chaincode-javascript),
// written again for cchost's tests (the sample's files are not copied into this
// repository), as examples/events is in Rust: every change sets a chaincode event named
// after the transaction whose payload is the asset's JSON. The sample's private-data part
// (transient `asset_properties`) is left out: cchost does not support private data yet.
'use strict';

const { Contract } = require('fabric-contract-api');

async function read(ctx, id) {
    const bytes = await ctx.stub.getState(id);
    if (!bytes || bytes.length === 0) {
        throw new Error(`The asset ${id} does not exist`);
    }
    return JSON.parse(bytes.toString());
}

// Writes the asset and sets event `name` with the same bytes.
async function writeWithEvent(ctx, name, asset) {
    const bytes = Buffer.from(JSON.stringify(asset));
    ctx.stub.setEvent(name, bytes);
    await ctx.stub.putState(asset.ID, bytes);
}

class AssetEvents extends Contract {
    constructor() {
        super('AssetEvents');
    }

    async CreateAsset(ctx, id, color, size, owner, appraisedValue) {
        const existing = await ctx.stub.getState(id);
        if (existing && existing.length > 0) {
            throw new Error(`The asset ${id} already exists`);
        }
        await writeWithEvent(ctx, 'CreateAsset', {
            ID: id, Color: color, Size: Number(size), Owner: owner, AppraisedValue: Number(appraisedValue),
        });
    }

    async ReadAsset(ctx, id) {
        return JSON.stringify(await read(ctx, id));
    }

    async TransferAsset(ctx, id, newOwner) {
        const asset = await read(ctx, id);
        asset.Owner = newOwner;
        await writeWithEvent(ctx, 'TransferAsset', asset);
    }

    async UpdateAsset(ctx, id, color, size, owner, appraisedValue) {
        await read(ctx, id);
        await writeWithEvent(ctx, 'UpdateAsset', {
            ID: id, Color: color, Size: Number(size), Owner: owner, AppraisedValue: Number(appraisedValue),
        });
    }

    async DeleteAsset(ctx, id) {
        const asset = await read(ctx, id);
        ctx.stub.setEvent('DeleteAsset', Buffer.from(JSON.stringify(asset)));
        await ctx.stub.deleteState(id);
    }
}

module.exports = { AssetEvents };
