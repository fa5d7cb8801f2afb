#!/usr/bin/env node
// An APNs provider-API client on node's built-in http2 and crypto only: it signs an ES256
// provider token from the .p8 key and POSTs notifications to /3/device/<token>. Only the
// base URL and the trusted CA (NODE_EXTRA_CA_CERTS=<state dir>/ca.pem) differ from Apple.
//
// Usage: node apns.js <request.json>
// request.json: {"url": "https://127.0.0.1:PORT", "p8": "<path>", "keyId", "teamId",
//   "sends": [{"token", "topic", "auth": true|false, "payload": {...}, "pushType"}]}
// Prints one JSON line: {"alpn", "results": [{"status", "apnsId", "body"}]}.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http2 = require('http2');

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

function providerToken(p8, keyId, teamId) {
  const header = b64url(JSON.stringify({ alg: 'ES256', kid: keyId }));
  const claims = b64url(JSON.stringify({ iss: teamId, iat: Math.floor(Date.now() / 1000) }));
  const input = `${header}.${claims}`;
  // JWS wants the raw r||s signature, not DER.
  const sig = crypto.sign('sha256', Buffer.from(input), { key: p8, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

function post(session, send, jwt) {
  return new Promise((resolve, reject) => {
    const headers = {
      ':method': 'POST',
      ':path': `/3/device/${send.token}`,
      'apns-topic': send.topic,
      'apns-push-type': send.pushType || 'alert',
      'content-type': 'application/json',
    };
    if (send.auth) headers.authorization = `bearer ${jwt}`;
    const stream = session.request(headers);
    let status = 0;
    let apnsId = null;
    const chunks = [];
    stream.on('response', (h) => {
      status = h[':status'];
      apnsId = h['apns-id'] || null;
    });
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => resolve({ status, apnsId, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    stream.end(JSON.stringify(send.payload || { aps: { alert: 'hello from node' } }));
  });
}

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const jwt = providerToken(fs.readFileSync(req.p8), req.keyId, req.teamId);
  const session = http2.connect(req.url);
  session.on('error', (err) => {
    console.error(err);
    process.exit(1);
  });
  await new Promise((resolve) => session.once('connect', resolve));
  const results = [];
  for (const send of req.sends) {
    results.push(await post(session, send, jwt));
  }
  console.log(JSON.stringify({ alpn: session.alpnProtocol, results }));
  session.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
