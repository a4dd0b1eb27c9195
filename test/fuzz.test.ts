/** A short fuzzing round of every parser and live server (`npm run fuzz` runs >= 1M each). */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {fuzzHttpServer, fuzzParsers, fuzzUdpServer, fuzzWsServer} from './fuzz/fuzz.js'

// Below the ephemeral range (32768-60999), which outgoing connections draw from.
const port = 30_000 + (process.pid % 900) * 3

test('parsers: 30k random and mutated inputs each, nothing thrown', () => {
  for (const r of fuzzParsers(30_000, Date.now() % 1000)) assert.equal(r.crashes, 0, `${r.target}: ${r.firstCrash}`)
})

for (const [name, fuzz, p] of [
  ['udp', fuzzUdpServer, port],
  ['http', fuzzHttpServer, port + 1],
  ['ws', fuzzWsServer, port + 2],
] as const) {
  test(`live ${name} server: 30k mutated requests, still answering, no error output`, async () => {
    const r = await fuzz(30_000, p, Date.now() % 1000)
    assert.equal(r.aliveAfter, true, `the server stopped answering: ${r.errorOutput}`)
    assert.equal(r.errorOutput, '', 'the server wrote errors')
    assert.ok(r.inputs >= 30_000)
  })
}
