/**
 * The fast cases of the attack suite (test/attack/, `npm run attack` runs them all): each starts
 * a tracker as a child process and attacks it over loopback. The test name carries the class of
 * issue 13 it checks; those of classes 1-10 fail until that class is fixed.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {ATTACKS} from './attack/index.js'
import {expand, runCase, serverLabel} from './attack/suite.js'

const CLASSES: Record<string, string> = {
  1: "reply carries another client's data",
  2: 'HTTP pipelining',
  3: 'WS ping flood',
  4: 'stalled TLS handshakes',
  5: 'HTTP silent connections',
  6: 'UDP mesh queues',
  7: 'access-list reloads',
  8: 'files and signals',
  9: 'WS pending offers',
  10: 'lenient HTTP parsing',
  held: 'already held',
}

for (const c of expand(
  ATTACKS.filter(a => a.fast),
  1,
)) {
  const cls = c.attack.name.split('.')[0]
  test(`attack class ${cls} (${CLASSES[cls]}): ${c.attack.name} against ${serverLabel({server: c.attack.server, workers: c.workers})}`, async () => {
    const r = await runCase(c, {quick: true, log: () => {}})
    assert.ok(r.held, `not held: ${r.evidence}`)
  })
}
