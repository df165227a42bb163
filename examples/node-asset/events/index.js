// AssetEvents alone, so the default contract: a package whose package.json `main` is this
// file serves the sample's unprefixed function names (`CreateAsset`). Its packages resolve
// from ../node_modules.
'use strict';

module.exports.contracts = [require('../asset-events').AssetEvents];
