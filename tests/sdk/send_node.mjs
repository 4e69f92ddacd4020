// Replays a list of calls with @segment/analytics-node (the real npm SDK) against a host.
// Usage: node send_node.mjs <host> <writeKey> '<json list of {method, params}>'
// Exits 1 (printing the errors) if the SDK reported any delivery error.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey, callsJson] = process.argv.slice(2)
const calls = JSON.parse(callsJson)
const analytics = new Analytics({ writeKey, host, flushInterval: 200, maxRetries: 2 })
const errors = []
analytics.on('error', (err) => errors.push(String(err?.reason ?? err?.code ?? err)))
for (const { method, params } of calls) {
  if (params.timestamp) params.timestamp = new Date(params.timestamp)
  analytics[method](params)
}
await analytics.closeAndFlush({ timeout: 30000 })
if (errors.length) {
  console.error(JSON.stringify({ errors }))
  process.exit(1)
}
console.log(JSON.stringify({ sent: calls.length }))
