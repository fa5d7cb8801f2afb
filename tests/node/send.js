#!/usr/bin/env node
// Send one Web Push message with the npm `web-push` package, exactly as an application
// server would: only the subscription's endpoint (the simulator's) and the CA the process
// trusts (NODE_EXTRA_CA_CERTS=<state dir>/ca.pem) differ from production.
//
// Usage: node send.js <request.json>
// request.json: {"subscription": {...}, "payload": "text", "vapid": {"subject",
//   "publicKey", "privateKey"}, "options": {"TTL", "urgency", "topic", "contentEncoding"}}
// Prints one JSON line: {"ok": true, "statusCode", "headers", "body"} on success, or
// {"ok": false, "name", "statusCode", "headers", "body", "message"} when web-push rejects.
'use strict';

const fs = require('fs');
const webpush = require('web-push');

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  webpush.setVapidDetails(req.vapid.subject, req.vapid.publicKey, req.vapid.privateKey);
  try {
    const res = await webpush.sendNotification(req.subscription, req.payload, req.options || {});
    console.log(JSON.stringify({
      ok: true, statusCode: res.statusCode, headers: res.headers, body: res.body,
    }));
  } catch (err) {
    console.log(JSON.stringify({
      ok: false,
      name: err.name,
      statusCode: err.statusCode,
      headers: err.headers,
      body: err.body,
      message: err.message,
    }));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
