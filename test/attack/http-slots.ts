/**
 * Class 5: silent connections hold every slot. At max_connections = 1000 the attacker holds 1,000
 * connections (per worker) that never send a byte, and opens as many fresh ones every 10 s; a
 * legitimate client on fresh connections must still get at least 95% of its announces answered.
 */
import {holdConnections, sleep, type Held} from './net.js'
import {httpAnnouncer, Probe} from './probe.js'
import type {Attack} from './suite.js'

const MAX_CONNECTIONS = 1000

const silentConnections: Attack = {
  name: '5.silent-connections',
  server: 'http',
  workers: 'any',
  budgetS: 90,
  async run(ctx) {
    const t = await ctx.tracker({protocol: 'http', config: {connections: {max_connections: MAX_CONNECTIONS}}})
    const probe = new Probe(httpAnnouncer(t.port), 300)
    const rounds = ctx.seconds(3, 2)
    let current: Held[] = []
    let opened = 0
    let cut = 0
    probe.start('during')
    for (let round = 0; round < rounds; round++) {
      const roundStart = Date.now()
      // Before request_timeout (10 s) cuts them: the old ones go and new ones take their slots at once.
      cut += current.filter(h => h.closedAt !== 0).length
      for (const h of current) h.socket.destroy()
      current = await holdConnections(ctx, t.port, MAX_CONNECTIONS * ctx.workers)
      opened += current.length
      await sleep(Math.max(0, 10_000 - (Date.now() - roundStart)))
    }
    cut += current.filter(h => h.closedAt !== 0).length
    probe.phase('after')
    for (const h of current) h.socket.destroy()
    await sleep(2000)
    await probe.stop()
    const s = probe.summary('during')
    const drops = await t.byReason('tracker_dropped_total')
    return {
      held: probe.ratio('during') >= 0.95 && probe.ratio('after') >= 0.95,
      evidence:
        `${opened} silent connections over ${rounds} rounds of 10 s, ${cut} closed by the tracker; legit announces answered ${s.answered} of ${s.sent} ` +
        `(${Math.round(100 * probe.ratio('during'))}%, p50 ${Math.round(s.p50)} ms, max ${Math.round(s.max)} ms), ${probe.text('after')}; drops: ${drops}`,
    }
  },
}

export const SLOT_ATTACKS: Attack[] = [silentConnections]
