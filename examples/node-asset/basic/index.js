// AssetTransfer alone, under the sample's title: started with fabric-shim's
// `--module-path basic`, unprefixed function names (`InitLedger`) reach it as they reach
// the sample. Its packages resolve from ../node_modules.
'use strict';

module.exports.contracts = [require('../asset-transfer').AssetTransfer];
