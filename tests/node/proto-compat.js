#!/usr/bin/env node
// Golden wire-compatibility corpus built with Fabric's own generated JavaScript
// (@hyperledger/fabric-protos, google-protobuf). The Rust side (tests/integration/
// proto_compat.rs + corpus.rs) builds the same corpus with cchost-proto.
//
//   node proto-compat.js encode        prints {"messages": {name: base64}, "services": [...]}
//   node proto-compat.js check < JSON  reads {name: base64} encoded by Rust; for each entry
//                                      decodes it with Fabric's class, compares every field
//                                      with this corpus and re-encodes to identical bytes.
//                                      Prints one line per failure; exits 1 if any.
'use strict';

const { common, peer, msp, orderer, gateway, ledger } = require('@hyperledger/fabric-protos');
const { Timestamp } = require('google-protobuf/google/protobuf/timestamp_pb');
const { kvrwset } = ledger.rwset;
const { rwset } = ledger;
const { queryresult } = ledger;

const bytes = (s) => Uint8Array.from(Buffer.from(s, 'utf8'));
const seq = (n, from = 0) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);
const enc = (m) => m.serializeBinary();

// Builds a message by calling Fabric's generated setters: `{fooList: [..]}` calls
// `setFooList`, a Map calls `getFooMap().set` per entry, anything else `set<Foo>`.
// An unknown field throws.
function make(Cls, fields = {}) {
  const m = new Cls();
  for (const [name, value] of Object.entries(fields)) {
    const cap = name.charAt(0).toUpperCase() + name.slice(1);
    if (value instanceof Map) {
      const map = m[`get${cap}Map`]();
      for (const [k, v] of value) map.set(k, v);
    } else {
      call(m, `set${cap}`, value);
    }
  }
  return m;
}
function call(m, setter, value) {
  if (typeof m[setter] !== 'function') throw new Error(`${m.constructor.name || 'message'} has no ${setter}`);
  m[setter](value);
}

function corpus() {
  const entries = [];
  // valuesOnly: the entry is compared field by field but not byte for byte (see the
  // map-entry note below).
  const add = (name, type, msg, valuesOnly = false) => { entries.push({ name, type, msg, valuesOnly }); return msg; };

  const TXID = '6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b';
  const TXID2 = 'd4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35';
  const CHANNEL = 'mychannel';
  const PKG = 'asset_1.0:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881';
  const ts = make(Timestamp, { seconds: 1700000000, nanos: 123456789 });

  // Identity and the SignedProposal -> Proposal -> Header chain.
  const creator = add('msp.SerializedIdentity', 'msp.SerializedIdentity', make(msp.SerializedIdentity, {
    mspid: 'Org1MSP',
    idBytes: bytes('-----BEGIN CERTIFICATE-----\nMIIBkTCCATegAwIBAgIUTest\n-----END CERTIFICATE-----\n'),
  }));
  const nonce = seq(24, 1);
  const ccid = add('protos.ChaincodeID', 'protos.ChaincodeID', make(peer.ChaincodeID, { path: 'github.com/example/asset', name: 'asset', version: '1.0' }));
  const input = add('protos.ChaincodeInput', 'protos.ChaincodeInput', make(peer.ChaincodeInput, {
    argsList: [bytes('asset:put'), bytes('k1'), bytes('v1')],
    decorations: new Map([['alpha', bytes('a')], ['beta', bytes('b')]]),
    isInit: true,
  }));
  const spec = add('protos.ChaincodeSpec', 'protos.ChaincodeSpec', make(peer.ChaincodeSpec, {
    type: peer.ChaincodeSpec.Type.NODE, chaincodeId: ccid, input, timeout: 30,
  }));
  const cis = add('protos.ChaincodeInvocationSpec', 'protos.ChaincodeInvocationSpec', make(peer.ChaincodeInvocationSpec, { chaincodeSpec: spec }));
  const ccpp = add('protos.ChaincodeProposalPayload', 'protos.ChaincodeProposalPayload', make(peer.ChaincodeProposalPayload, {
    input: enc(cis),
    transientmap: new Map([['price', bytes('42')], ['secret', bytes('shh')]]),
  }));
  const ccppNoTransient = make(peer.ChaincodeProposalPayload, { input: enc(cis) });
  const hdrExt = add('protos.ChaincodeHeaderExtension', 'protos.ChaincodeHeaderExtension', make(peer.ChaincodeHeaderExtension, {
    chaincodeId: make(peer.ChaincodeID, { name: 'asset' }),
  }));
  const channelHeader = (txId) => make(common.ChannelHeader, {
    type: common.HeaderType.ENDORSER_TRANSACTION, version: 1, timestamp: ts, channelId: CHANNEL,
    txId, epoch: 7, extension$: enc(hdrExt), tlsCertHash: seq(32, 100),
  });
  add('common.ChannelHeader', 'common.ChannelHeader', channelHeader(TXID));
  const sigHdr = add('common.SignatureHeader', 'common.SignatureHeader', make(common.SignatureHeader, { creator: enc(creator), nonce }));
  const header = (txId) => make(common.Header, { channelHeader: enc(channelHeader(txId)), signatureHeader: enc(sigHdr) });
  add('common.Header', 'common.Header', header(TXID));
  const proposal = add('protos.Proposal', 'protos.Proposal', make(peer.Proposal, {
    header: enc(header(TXID)), payload: enc(ccpp), extension$: bytes('proposal-extension'),
  }));
  const signedProposal = add('protos.SignedProposal', 'protos.SignedProposal', make(peer.SignedProposal, {
    proposalBytes: enc(proposal), signature: seq(70, 200),
  }));

  // Chaincode results.
  const response = add('protos.Response', 'protos.Response', make(peer.Response, { status: 200, message: 'OK', payload: bytes('ok') }));
  const event = (txId, name) => make(peer.ChaincodeEvent, { chaincodeId: 'asset', txId, eventName: name, payload: bytes('{"key":"k1"}') });
  add('protos.ChaincodeEvent', 'protos.ChaincodeEvent', event(TXID, 'Put'));

  // Policies and principals.
  const role = add('common.MSPRole', 'common.MSPRole', make(common.MSPRole, { mspIdentifier: 'Org1MSP', role: common.MSPRole.MSPRoleType.PEER }));
  const ou = add('common.OrganizationUnit', 'common.OrganizationUnit', make(common.OrganizationUnit, {
    mspIdentifier: 'Org1MSP', organizationalUnitIdentifier: 'client', certifiersIdentifier: seq(4, 9),
  }));
  const policy = add('common.SignaturePolicyEnvelope', 'common.SignaturePolicyEnvelope', make(common.SignaturePolicyEnvelope, {
    version: 0,
    rule: make(common.SignaturePolicy, {
      nOutOf: make(common.SignaturePolicy.NOutOf, {
        n: 1,
        rulesList: [make(common.SignaturePolicy, { signedBy: 0 }), make(common.SignaturePolicy, { signedBy: 1 })],
      }),
    }),
    identitiesList: [
      make(common.MSPPrincipal, { principalClassification: common.MSPPrincipal.Classification.ROLE, principal: enc(role) }),
      make(common.MSPPrincipal, { principalClassification: common.MSPPrincipal.Classification.ORGANIZATION_UNIT, principal: enc(ou) }),
    ],
  }));
  const implicit = add('common.ImplicitMetaPolicy', 'common.ImplicitMetaPolicy', make(common.ImplicitMetaPolicy, {
    subPolicy: 'Endorsement', rule: common.ImplicitMetaPolicy.Rule.MAJORITY,
  }));
  add('common.Policy', 'common.Policy', make(common.Policy, { type: common.Policy.PolicyType.IMPLICIT_META, value: enc(implicit) }));
  add('common.ApplicationPolicy/signature_policy', 'common.ApplicationPolicy', make(common.ApplicationPolicy, { signaturePolicy: policy }));
  add('common.ApplicationPolicy/reference', 'common.ApplicationPolicy', make(common.ApplicationPolicy, {
    channelConfigPolicyReference: '/Channel/Application/Endorsement',
  }));

  // Shim payloads, then one ChaincodeMessage of every type.
  const queryMetadata = add('protos.QueryMetadata', 'protos.QueryMetadata', make(peer.QueryMetadata, { pagesize: 2, bookmark: 'k2' }));
  const kv = (key, value) => make(queryresult.KV, { namespace: 'asset', key, value: bytes(value) });
  add('queryresult.KV', 'queryresult.KV', kv('k1', 'v1'));
  const keyMod = (txId, value, isDelete) => make(queryresult.KeyModification, { txId, value: bytes(value), timestamp: ts, isDelete });
  add('queryresult.KeyModification', 'queryresult.KeyModification', keyMod(TXID, 'v1', true));
  const responseMetadata = add('protos.QueryResponseMetadata', 'protos.QueryResponseMetadata', make(peer.QueryResponseMetadata, {
    fetchedRecordsCount: 2, bookmark: 'k3',
  }));
  const rangeResponse = add('protos.QueryResponse', 'protos.QueryResponse', make(peer.QueryResponse, {
    resultsList: [make(peer.QueryResultBytes, { resultbytes: enc(kv('k1', 'v1')) }), make(peer.QueryResultBytes, { resultbytes: enc(kv('k2', 'v2')) })],
    hasMore: true, id: '0f8fad5b-d9cb-469f-a165-70867728950e', metadata: enc(responseMetadata),
  }));
  const historyResponse = make(peer.QueryResponse, {
    resultsList: [make(peer.QueryResultBytes, { resultbytes: enc(keyMod(TXID, 'v1', false)) }), make(peer.QueryResultBytes, { resultbytes: enc(keyMod(TXID2, '', true)) })],
    id: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  });
  const stateMetadata = add('protos.StateMetadata', 'protos.StateMetadata', make(peer.StateMetadata, { metakey: 'VALIDATION_PARAMETER', value: seq(5, 1) }));
  const stateMetadataResult = add('protos.StateMetadataResult', 'protos.StateMetadataResult', make(peer.StateMetadataResult, {
    entriesList: [stateMetadata, make(peer.StateMetadata, { metakey: 'OTHER', value: bytes('x') })],
  }));
  const multipleResult = add('protos.GetStateMultipleResult', 'protos.GetStateMultipleResult', make(peer.GetStateMultipleResult, {
    valuesList: [bytes('v1'), new Uint8Array(0), bytes('v3')],
  }));
  const T = peer.ChaincodeMessage.Type;
  const payloads = {
    UNDEFINED: null,
    REGISTER: add('protos.ChaincodeID/register', 'protos.ChaincodeID', make(peer.ChaincodeID, { name: PKG })),
    REGISTERED: null,
    INIT: input,
    READY: add('protos.ChaincodeAdditionalParams', 'protos.ChaincodeAdditionalParams', make(peer.ChaincodeAdditionalParams, {
      useWriteBatch: true, maxSizeWriteBatch: 1000, useGetMultipleKeys: true, maxSizeGetMultipleKeys: 200,
    })),
    TRANSACTION: make(peer.ChaincodeInput, { argsList: [bytes('asset:get'), bytes('k2')] }),
    COMPLETED: response,
    ERROR: bytes('GET_STATE failed: transaction ID: ' + TXID + ': boom'),
    GET_STATE: add('protos.GetState', 'protos.GetState', make(peer.GetState, { key: 'k1', collection: 'col' })),
    PUT_STATE: add('protos.PutState', 'protos.PutState', make(peer.PutState, { key: 'k1', value: bytes('v1'), collection: 'col' })),
    DEL_STATE: add('protos.DelState', 'protos.DelState', make(peer.DelState, { key: 'k1', collection: 'col' })),
    INVOKE_CHAINCODE: make(peer.ChaincodeSpec, {
      chaincodeId: make(peer.ChaincodeID, { name: 'other/mychannel' }),
      input: make(peer.ChaincodeInput, { argsList: [bytes('get'), bytes('k1')] }),
    }),
    RESPONSE: rangeResponse,
    GET_STATE_BY_RANGE: add('protos.GetStateByRange', 'protos.GetStateByRange', make(peer.GetStateByRange, {
      startkey: '\u0001', endkey: 'k9', collection: 'col', metadata: enc(queryMetadata),
    })),
    GET_QUERY_RESULT: add('protos.GetQueryResult', 'protos.GetQueryResult', make(peer.GetQueryResult, {
      query: '{"selector":{"owner":"Tom"}}', collection: 'col', metadata: enc(queryMetadata),
    })),
    QUERY_STATE_NEXT: add('protos.QueryStateNext', 'protos.QueryStateNext', make(peer.QueryStateNext, { id: '0f8fad5b-d9cb-469f-a165-70867728950e' })),
    QUERY_STATE_CLOSE: add('protos.QueryStateClose', 'protos.QueryStateClose', make(peer.QueryStateClose, { id: '7c9e6679-7425-40de-944b-e07fc1f90ae7' })),
    KEEPALIVE: null,
    GET_HISTORY_FOR_KEY: add('protos.GetHistoryForKey', 'protos.GetHistoryForKey', make(peer.GetHistoryForKey, { key: 'k1' })),
    GET_STATE_METADATA: add('protos.GetStateMetadata', 'protos.GetStateMetadata', make(peer.GetStateMetadata, { key: 'k1', collection: 'col' })),
    PUT_STATE_METADATA: add('protos.PutStateMetadata', 'protos.PutStateMetadata', make(peer.PutStateMetadata, {
      key: 'k1', collection: 'col', metadata: stateMetadata,
    })),
    GET_PRIVATE_DATA_HASH: make(peer.GetState, { key: 'k2', collection: 'secrets' }),
    PURGE_PRIVATE_DATA: add('protos.PurgePrivateState', 'protos.PurgePrivateState', make(peer.PurgePrivateState, { key: 'k1', collection: 'secrets' })),
    WRITE_BATCH_STATE: add('protos.WriteBatchState', 'protos.WriteBatchState', make(peer.WriteBatchState, {
      recList: [
        make(peer.WriteRecord, { key: 'k1', value: bytes('v1'), collection: 'col', metadata: stateMetadata, type: peer.WriteRecord.Type.PUT_STATE }),
        make(peer.WriteRecord, { key: 'k2', type: peer.WriteRecord.Type.DEL_STATE }),
        make(peer.WriteRecord, { key: 'k3', metadata: stateMetadata, type: peer.WriteRecord.Type.PUT_STATE_METADATA }),
        make(peer.WriteRecord, { key: 'k4', collection: 'secrets', type: peer.WriteRecord.Type.PURGE_PRIVATE_DATA }),
      ],
    })),
    GET_STATE_MULTIPLE: add('protos.GetStateMultiple', 'protos.GetStateMultiple', make(peer.GetStateMultiple, { keysList: ['k1', 'k2', 'k3'], collection: 'col' })),
  };
  const shim = (type, payload, extra = {}) => {
    const fields = { type: T[type], txid: TXID, channelId: CHANNEL, ...extra };
    if (payload) fields.payload = payload instanceof Uint8Array ? payload : enc(payload);
    return make(peer.ChaincodeMessage, fields);
  };
  for (const [type, payload] of Object.entries(payloads)) {
    const extra = {};
    if (type === 'REGISTER') { extra.txid = ''; extra.channelId = ''; }
    if (type === 'INIT' || type === 'TRANSACTION') extra.proposal = signedProposal;
    if (type === 'TRANSACTION') extra.timestamp = ts;
    if (type === 'COMPLETED') extra.chaincodeEvent = event(TXID, 'Put');
    add(`protos.ChaincodeMessage/${type}`, 'protos.ChaincodeMessage', shim(type, payload, extra));
  }
  add('protos.ChaincodeMessage/RESPONSE/history', 'protos.ChaincodeMessage', shim('RESPONSE', historyResponse));
  add('protos.ChaincodeMessage/RESPONSE/metadata', 'protos.ChaincodeMessage', shim('RESPONSE', stateMetadataResult));
  add('protos.ChaincodeMessage/RESPONSE/multiple', 'protos.ChaincodeMessage', shim('RESPONSE', multipleResult));
  add('protos.ChaincodeMessage/RESPONSE/invoke', 'protos.ChaincodeMessage', shim('RESPONSE', shim('COMPLETED', response)));

  // Read/write sets.
  const version = (blockNum, txNum) => make(kvrwset.Version, { blockNum, txNum });
  const kvRwset = add('kvrwset.KVRWSet', 'kvrwset.KVRWSet', make(kvrwset.KVRWSet, {
    readsList: [make(kvrwset.KVRead, { key: 'k1', version: version(3, 1) }), make(kvrwset.KVRead, { key: 'missing' })],
    rangeQueriesInfoList: [
      make(kvrwset.RangeQueryInfo, {
        startKey: '\u0001', endKey: '', itrExhausted: true,
        rawReads: make(kvrwset.QueryReads, { kvReadsList: [make(kvrwset.KVRead, { key: 'k1', version: version(3, 1) }), make(kvrwset.KVRead, { key: 'k2', version: version(4, 0) })] }),
      }),
      make(kvrwset.RangeQueryInfo, {
        startKey: 'a', endKey: 'z', itrExhausted: false,
        readsMerkleHashes: make(kvrwset.QueryReadsMerkleSummary, { maxDegree: 50, maxLevel: 2, maxLevelHashesList: [seq(32, 1), seq(32, 2)] }),
      }),
    ],
    writesList: [make(kvrwset.KVWrite, { key: 'k1', value: bytes('v1') }), make(kvrwset.KVWrite, { key: 'k2', isDelete: true })],
    metadataWritesList: [make(kvrwset.KVMetadataWrite, {
      key: 'k1', entriesList: [make(kvrwset.KVMetadataEntry, { name: 'VALIDATION_PARAMETER', value: seq(3, 7) })],
    })],
  }));
  const hashed = add('kvrwset.HashedRWSet', 'kvrwset.HashedRWSet', make(kvrwset.HashedRWSet, {
    hashedReadsList: [make(kvrwset.KVReadHash, { keyHash: seq(32, 3), version: version(2, 5) })],
    hashedWritesList: [make(kvrwset.KVWriteHash, { keyHash: seq(32, 4), isDelete: true, valueHash: seq(32, 5), isPurge: true })],
    metadataWritesList: [make(kvrwset.KVMetadataWriteHash, { keyHash: seq(32, 6), entriesList: [make(kvrwset.KVMetadataEntry, { name: 'm', value: bytes('v') })] })],
  }));
  const txRwset = add('rwset.TxReadWriteSet', 'rwset.TxReadWriteSet', make(rwset.TxReadWriteSet, {
    dataModel: rwset.TxReadWriteSet.DataModel.KV,
    nsRwsetList: [make(rwset.NsReadWriteSet, {
      namespace: 'asset', rwset: enc(kvRwset),
      collectionHashedRwsetList: [make(rwset.CollectionHashedReadWriteSet, { collectionName: 'secrets', hashedRwset: enc(hashed), pvtRwsetHash: seq(32, 8) })],
    })],
  }));
  const pvt = add('rwset.TxPvtReadWriteSet', 'rwset.TxPvtReadWriteSet', make(rwset.TxPvtReadWriteSet, {
    nsPvtRwsetList: [make(rwset.NsPvtReadWriteSet, {
      namespace: 'asset', collectionPvtRwsetList: [make(rwset.CollectionPvtReadWriteSet, { collectionName: 'secrets', rwset: enc(kvRwset) })],
    })],
  }));

  // Endorsement: ChaincodeAction -> ProposalResponsePayload -> ProposalResponse.
  const endorsement = add('protos.Endorsement', 'protos.Endorsement', make(peer.Endorsement, { endorser: enc(creator), signature: seq(71, 9) }));
  const action = (txId, eventName) => make(peer.ChaincodeAction, {
    results: enc(txRwset), events: enc(event(txId, eventName)), response, chaincodeId: make(peer.ChaincodeID, { name: 'asset', version: '1.0' }),
  });
  add('protos.ChaincodeAction', 'protos.ChaincodeAction', action(TXID, 'Put'));
  const prp = (txId, eventName) => make(peer.ProposalResponsePayload, { proposalHash: seq(32, 11), extension$: enc(action(txId, eventName)) });
  add('protos.ProposalResponsePayload', 'protos.ProposalResponsePayload', prp(TXID, 'Put'));
  add('protos.ProposalResponse', 'protos.ProposalResponse', make(peer.ProposalResponse, {
    version: 1, timestamp: ts, response, payload: enc(prp(TXID, 'Put')), endorsement,
    interest: make(peer.ChaincodeInterest, {
      chaincodesList: [make(peer.ChaincodeCall, {
        name: 'asset', collectionNamesList: ['secrets', 'more'], noPrivateReads: true, noPublicWrites: false,
        keyPoliciesList: [policy], disregardNamespacePolicy: true,
      })],
    }),
  }));

  // A block with two endorser transactions.
  const envelope = (txId, eventName) => {
    const cap = make(peer.ChaincodeActionPayload, {
      chaincodeProposalPayload: enc(ccppNoTransient),
      action: make(peer.ChaincodeEndorsedAction, { proposalResponsePayload: enc(prp(txId, eventName)), endorsementsList: [endorsement] }),
    });
    const tx = make(peer.Transaction, { actionsList: [make(peer.TransactionAction, { header: enc(sigHdr), payload: enc(cap) })] });
    const payload = make(common.Payload, { header: header(txId), data: enc(tx) });
    return { cap, tx, payload, env: make(common.Envelope, { payload: enc(payload), signature: seq(72, 13) }) };
  };
  const tx1 = envelope(TXID, 'Put');
  const tx2 = envelope(TXID2, 'Transfer');
  add('protos.ChaincodeActionPayload', 'protos.ChaincodeActionPayload', tx1.cap);
  add('protos.Transaction', 'protos.Transaction', tx1.tx);
  add('common.Payload', 'common.Payload', tx1.payload);
  add('common.Envelope', 'common.Envelope', tx1.env);
  const metadataSigs = make(common.Metadata, {
    value: bytes('orderer'),
    signaturesList: [make(common.MetadataSignature, {
      signatureHeader: enc(sigHdr), signature: seq(8, 1),
      identifierHeader: enc(make(common.IdentifierHeader, { identifier: 1, nonce: seq(4, 2) })),
    })],
  });
  add('common.Metadata', 'common.Metadata', metadataSigs);
  const lastConfig = make(common.Metadata, { value: enc(make(common.LastConfig, { index: 2 })) });
  const block = add('common.Block', 'common.Block', make(common.Block, {
    header: make(common.BlockHeader, { number: 5, previousHash: seq(32, 20), dataHash: seq(32, 21) }),
    data: make(common.BlockData, { dataList: [enc(tx1.env), enc(tx2.env)] }),
    metadata: make(common.BlockMetadata, {
      metadataList: [
        enc(metadataSigs), enc(lastConfig), Uint8Array.from([0, 11]),
        enc(make(common.OrdererBlockMetadata, { lastConfig: make(common.LastConfig, { index: 2 }), consenterMetadata: bytes('raft') })),
        seq(32, 22),
      ],
    }),
  }));
  add('protos.ProcessedTransaction', 'protos.ProcessedTransaction', make(peer.ProcessedTransaction, {
    transactionenvelope: tx2.env, validationcode: peer.TxValidationCode.MVCC_READ_CONFLICT,
  }));
  add('common.BlockchainInfo', 'common.BlockchainInfo', make(common.BlockchainInfo, {
    height: 6, currentblockhash: seq(32, 30), previousblockhash: seq(32, 31),
    bootstrappingsnapshotinfo: make(common.BootstrappingSnapshotInfo, { lastblockinsnapshot: 3 }),
  }));
  add('protos.ChaincodeDeploymentSpec', 'protos.ChaincodeDeploymentSpec', make(peer.ChaincodeDeploymentSpec, { chaincodeSpec: spec, codePackage: seq(16, 40) }));

  // Deliver: the seek request and every kind of response.
  const seek = (fields) => make(orderer.SeekPosition, fields);
  const seekInfo = add('orderer.SeekInfo', 'orderer.SeekInfo', make(orderer.SeekInfo, {
    start: seek({ specified: make(orderer.SeekSpecified, { number: 3 }) }),
    stop: seek({ specified: make(orderer.SeekSpecified, { number: Number.MAX_SAFE_INTEGER }) }),
    behavior: orderer.SeekInfo.SeekBehavior.FAIL_IF_NOT_READY,
    errorResponse: orderer.SeekInfo.SeekErrorResponse.BEST_EFFORT,
    contentType: orderer.SeekInfo.SeekContentType.HEADER_WITH_SIG,
  }));
  add('orderer.SeekInfo/newest', 'orderer.SeekInfo', make(orderer.SeekInfo, {
    start: seek({ nextCommit: new orderer.SeekNextCommit() }), stop: seek({ newest: new orderer.SeekNewest() }),
  }));
  const seekHeader = make(common.ChannelHeader, { type: common.HeaderType.DELIVER_SEEK_INFO, timestamp: ts, channelId: CHANNEL, txId: TXID });
  add('common.Envelope/seek', 'common.Envelope', make(common.Envelope, {
    payload: enc(make(common.Payload, {
      header: make(common.Header, { channelHeader: enc(seekHeader), signatureHeader: enc(sigHdr) }),
      data: enc(seekInfo),
    })),
    signature: seq(70, 3),
  }));
  const filteredBlock = add('protos.FilteredBlock', 'protos.FilteredBlock', make(peer.FilteredBlock, {
    channelId: CHANNEL, number: 5,
    filteredTransactionsList: [
      make(peer.FilteredTransaction, {
        txid: TXID, type: common.HeaderType.ENDORSER_TRANSACTION, txValidationCode: peer.TxValidationCode.VALID,
        transactionActions: make(peer.FilteredTransactionActions, {
          chaincodeActionsList: [make(peer.FilteredChaincodeAction, {
            chaincodeEvent: make(peer.ChaincodeEvent, { chaincodeId: 'asset', txId: TXID, eventName: 'Put' }),
          })],
        }),
      }),
      make(peer.FilteredTransaction, {
        txid: TXID2, type: common.HeaderType.ENDORSER_TRANSACTION, txValidationCode: peer.TxValidationCode.MVCC_READ_CONFLICT,
        transactionActions: new peer.FilteredTransactionActions(),
      }),
    ],
  }));
  add('protos.DeliverResponse/filtered_block', 'protos.DeliverResponse', make(peer.DeliverResponse, { filteredBlock }));
  add('protos.DeliverResponse/block', 'protos.DeliverResponse', make(peer.DeliverResponse, { block }));
  add('protos.DeliverResponse/status', 'protos.DeliverResponse', make(peer.DeliverResponse, { status: common.Status.NOT_FOUND }));
  add('protos.DeliverResponse/block_and_private_data', 'protos.DeliverResponse', make(peer.DeliverResponse, {
    blockAndPrivateData: make(peer.BlockAndPrivateData, { block, privateDataMap: new Map([[1, pvt], [2, pvt]]) }),
  }));
  // Map entries whose key or value is the default: google-protobuf (like protobuf-go) writes
  // the default explicitly, prost omits it. Same values, different bytes.
  add('protos.BlockAndPrivateData/tx_index_0', 'protos.BlockAndPrivateData', make(peer.BlockAndPrivateData, {
    privateDataMap: new Map([[0, make(rwset.TxPvtReadWriteSet, { nsPvtRwsetList: [make(rwset.NsPvtReadWriteSet, { namespace: 'asset' })] })]]),
  }), true);
  add('protos.ChaincodeInput/empty_decoration', 'protos.ChaincodeInput', make(peer.ChaincodeInput, {
    decorations: new Map([['k', new Uint8Array(0)]]),
  }), true);
  add('orderer.DeliverResponse/status', 'orderer.DeliverResponse', make(orderer.DeliverResponse, { status: common.Status.SUCCESS }));
  add('orderer.DeliverResponse/block', 'orderer.DeliverResponse', make(orderer.DeliverResponse, { block }));
  add('orderer.BroadcastResponse', 'orderer.BroadcastResponse', make(orderer.BroadcastResponse, {
    status: common.Status.SERVICE_UNAVAILABLE, info: 'no leader',
  }));

  // Gateway: every request and response.
  const orgs = ['Org1MSP', 'Org2MSP'];
  add('gateway.EndorseRequest', 'gateway.EndorseRequest', make(gateway.EndorseRequest, {
    transactionId: TXID, channelId: CHANNEL, proposedTransaction: signedProposal, endorsingOrganizationsList: orgs,
  }));
  add('gateway.EndorseResponse', 'gateway.EndorseResponse', make(gateway.EndorseResponse, { preparedTransaction: tx1.env }));
  add('gateway.SubmitRequest', 'gateway.SubmitRequest', make(gateway.SubmitRequest, { transactionId: TXID, channelId: CHANNEL, preparedTransaction: tx1.env }));
  add('gateway.SubmitResponse', 'gateway.SubmitResponse', new gateway.SubmitResponse());
  const statusRequest = add('gateway.CommitStatusRequest', 'gateway.CommitStatusRequest', make(gateway.CommitStatusRequest, {
    transactionId: TXID, channelId: CHANNEL, identity: enc(creator),
  }));
  add('gateway.SignedCommitStatusRequest', 'gateway.SignedCommitStatusRequest', make(gateway.SignedCommitStatusRequest, {
    request: enc(statusRequest), signature: seq(70, 5),
  }));
  add('gateway.CommitStatusResponse', 'gateway.CommitStatusResponse', make(gateway.CommitStatusResponse, {
    result: peer.TxValidationCode.MVCC_READ_CONFLICT, blockNumber: 9,
  }));
  add('gateway.EvaluateRequest', 'gateway.EvaluateRequest', make(gateway.EvaluateRequest, {
    transactionId: TXID, channelId: CHANNEL, proposedTransaction: signedProposal, targetOrganizationsList: ['Org1MSP'],
  }));
  add('gateway.EvaluateResponse', 'gateway.EvaluateResponse', make(gateway.EvaluateResponse, { result: response }));
  const eventsRequest = add('gateway.ChaincodeEventsRequest', 'gateway.ChaincodeEventsRequest', make(gateway.ChaincodeEventsRequest, {
    channelId: CHANNEL, chaincodeId: 'asset', identity: enc(creator),
    startPosition: seek({ oldest: new orderer.SeekOldest() }), afterTransactionId: TXID,
  }));
  add('gateway.SignedChaincodeEventsRequest', 'gateway.SignedChaincodeEventsRequest', make(gateway.SignedChaincodeEventsRequest, {
    request: enc(eventsRequest), signature: seq(70, 6),
  }));
  add('gateway.ChaincodeEventsResponse', 'gateway.ChaincodeEventsResponse', make(gateway.ChaincodeEventsResponse, {
    eventsList: [event(TXID, 'Put'), event(TXID2, 'Transfer')], blockNumber: 5,
  }));
  add('gateway.ErrorDetail', 'gateway.ErrorDetail', make(gateway.ErrorDetail, {
    address: 'peer0.org1.example.com:7051', mspId: 'Org1MSP', message: 'chaincode response 500, boom',
  }));
  add('gateway.ProposedTransaction', 'gateway.ProposedTransaction', make(gateway.ProposedTransaction, {
    transactionId: TXID, proposal: signedProposal, endorsingOrganizationsList: orgs,
  }));
  add('gateway.PreparedTransaction', 'gateway.PreparedTransaction', make(gateway.PreparedTransaction, { transactionId: TXID, envelope: tx1.env }));

  return entries;
}

// Fabric's gRPC service definitions: path, streaming flags, message types.
function services() {
  const defs = [peer.ChaincodeSupportService, peer.ChaincodeService, peer.EndorserService, peer.DeliverService, gateway.GatewayService, orderer.AtomicBroadcastService];
  const typeOf = (fn) => fn.name.replace(/^(serialize|deserialize)_/, '').replace(/_/g, '.');
  return defs.flatMap((def) => Object.values(def).map((m) => ({
    path: m.path,
    request: typeOf(m.requestSerialize),
    response: typeOf(m.responseSerialize),
    client_streaming: m.requestStream,
    server_streaming: m.responseStream,
  })));
}

function classOf(type) {
  const [pkg, ...rest] = type.split('.');
  const root = { common, msp, protos: peer, orderer, gateway, kvrwset, rwset, queryresult }[pkg];
  const cls = rest.reduce((o, k) => (o ? o[k] : undefined), root);
  if (!cls) throw new Error(`no class for ${type}`);
  return cls;
}

// JSON of toObject() with every bytes value as base64: google-protobuf leaves map values
// as they were set (Uint8Array) but yields "" for a decoded empty one.
function canonical(obj) {
  return JSON.stringify(obj, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
}

function check(rustEncoded) {
  const failures = [];
  const entries = corpus();
  const names = new Set(entries.map((e) => e.name));
  for (const name of Object.keys(rustEncoded)) {
    if (!names.has(name)) failures.push(`${name}: not in the Node corpus`);
  }
  for (const { name, type, msg, valuesOnly } of entries) {
    if (!(name in rustEncoded)) { failures.push(`${name}: missing from the Rust corpus`); continue; }
    const rust = Buffer.from(rustEncoded[name], 'base64');
    let decoded;
    try {
      decoded = classOf(type).deserializeBinary(Uint8Array.from(rust));
    } catch (e) {
      failures.push(`${name}: Fabric's ${type} cannot decode the Rust bytes: ${e.message}`);
      continue;
    }
    const got = canonical(decoded.toObject());
    const want = canonical(msg.toObject());
    if (got !== want) failures.push(`${name}: fields differ\n  decoded: ${got}\n  expected: ${want}`);
    const reencoded = Buffer.from(decoded.serializeBinary());
    if (!valuesOnly && !reencoded.equals(rust)) failures.push(`${name}: re-encodes to other bytes\n  rust: ${rust.toString('hex')}\n  node: ${reencoded.toString('hex')}`);
  }
  for (const f of failures) console.log(f);
  console.log(`checked ${entries.length} messages, ${failures.length} failures`);
  return failures.length === 0;
}

function main() {
  const mode = process.argv[2];
  if (mode === 'encode') {
    const messages = {};
    for (const { name, msg } of corpus()) {
      if (name in messages) throw new Error(`duplicate corpus name ${name}`);
      messages[name] = Buffer.from(enc(msg)).toString('base64');
    }
    process.stdout.write(JSON.stringify({ messages, services: services() }));
  } else if (mode === 'check') {
    const input = require('fs').readFileSync(0, 'utf8');
    process.exit(check(JSON.parse(input)) ? 0 : 1);
  } else {
    console.error('usage: proto-compat.js encode | check < rust.json');
    process.exit(2);
  }
}

main();
