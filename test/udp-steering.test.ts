/** UDP steering's probes (src/server/udp/steering.ts): their shape, their answer, who may send them. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {PeerAddress} from '../src/io/udp.js'
import {isProbe, PROBE_LENGTH, ProbeSources, writeProbeAnswer} from '../src/server/udp/steering.js'

const peer = (address: string) => {
  const p = new PeerAddress()
  assert.ok(p.setText(address, 1234))
  return p
}

test('probes come only from loopback or an address the tracker binds', () => {
  const sources = new ProbeSources(['192.0.2.7:6969', '[2001:db8::5]:6969'])
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '192.0.2.7', '2001:db8::5', '::ffff:127.0.0.1']) assert.equal(sources.allows(peer(a)), true, a)
  for (const a of ['192.0.2.8', '10.0.0.1', '2001:db8::6', '::2', '::ffff:10.0.0.1']) assert.equal(sources.allows(peer(a)), false, a)
  // A wildcard binding adds nothing but loopback.
  const wildcard = new ProbeSources(['0.0.0.0:6969', '[::]:6969'])
  assert.equal(wildcard.allows(peer('10.0.0.1')), false)
  assert.equal(wildcard.allows(peer('127.0.0.1')), true)
})

test('a probe has one length and its marker; a real announce (98 bytes) or a short one is never taken for one', () => {
  const probe = Buffer.alloc(PROBE_LENGTH)
  probe.writeUInt32BE(1, 8)
  probe.writeUInt32BE(3, 12)
  probe[16] = 3
  Buffer.from('tracker-steer-probe').copy(probe, 17)
  assert.equal(isProbe(probe, probe.length), true)
  assert.equal(isProbe(probe, probe.length - 1), false)
  const scrape = Buffer.from(probe)
  scrape.writeUInt32BE(2, 8)
  assert.equal(isProbe(scrape, scrape.length), false)
  const other = Buffer.from(probe)
  other[20] ^= 1
  assert.equal(isProbe(other, other.length), false)
  const announce = Buffer.alloc(98)
  probe.copy(announce)
  assert.equal(isProbe(announce, announce.length), false)
  // The answer: action 1, the probe's transaction id, the worker, and it is smaller than the probe.
  const out = Buffer.alloc(64)
  const n = writeProbeAnswer(out, probe, 5)
  assert.ok(n < PROBE_LENGTH)
  assert.deepEqual([out.readUInt32BE(0), out.readUInt32BE(4), out.readUInt32BE(8)], [1, 3, 5])
})
