/**
 * Class 3: WebSocket control frames. A ping flood that never reads its pongs must not grow the
 * tracker's memory and must be cut off by send_timeout; unsolicited pongs must not keep a
 * connection that never answers pings alive.
 */
import type {Socket} from 'node:net'
import {randomBytes} from 'node:crypto'
import {maskedFrame} from '../../loadtest/ws-socket.js'
import {OP_PONG, OP_PING} from '../../src/protocol/ws/frame.js'
import {Probe, wsAnnouncer} from './probe.js'
import {mib, rawWebSocket, secs, sleep} from './net.js'
import {MiB} from './tracker.js'
import type {Attack} from './suite.js'

/** Tracker memory may grow by less than this during a ping flood. */
const PING_FLOOD_RSS_BOUND = 64 * MiB
const SEND_TIMEOUT_S = 10

/** Until the socket drains, closes or 100 ms have passed (a reset is the tracker's answer, not our error). */
function drained(s: Socket): Promise<void> {
  return new Promise(resolve => {
    const done = () => {
      clearTimeout(timer)
      s.off('drain', done)
      s.off('close', done)
      resolve()
    }
    const timer = setTimeout(done, 100)
    s.once('drain', done)
    s.once('close', done)
  })
}

type Io = 'batched' | 'node'
const serverOf = (io: Io) => (io === 'batched' ? 'ws' : 'ws node-io')
const wsConfig = (io: Io, connections: Record<string, number> = {}) => ({network: {batched_io: io === 'batched'}, connections})

function pingFlood(io: Io): Attack {
  return {
    name: '3.ping-flood',
    server: serverOf(io),
    workers: 'any',
    budgetS: 60,
    async run(ctx) {
      const t = await ctx.tracker({protocol: 'ws', config: wsConfig(io, {send_timeout: SEND_TIMEOUT_S})})
      await sleep(500)
      const rss0 = t.rss()
      const probe = new Probe(wsAnnouncer(t.port))
      const s = await rawWebSocket(ctx, t.port)
      s.pause() // never reads a pong
      let closedAt = 0
      s.on('close', () => (closedAt ||= Date.now()))
      let peak = rss0
      const sampler = setInterval(() => (peak = Math.max(peak, t.rss())), 250)
      ctx.defer(() => clearInterval(sampler))
      const burst = Buffer.concat(Array.from({length: 500}, () => maskedFrame(randomBytes(125), OP_PING)))
      const floodMs = ctx.seconds(10, 6) * 1000
      const t0 = Date.now()
      probe.start('during')
      let sent = 0
      while (!closedAt && Date.now() - t0 < floodMs) {
        // As fast as the tracker reads: the next burst when the last has left.
        if (s.writableLength < 4 * MiB) {
          sent += burst.length
          if (!s.write(burst)) await drained(s)
        } else {
          await drained(s)
        }
        await new Promise(setImmediate)
      }
      // Still not reading; a small ping now and then finds out when the tracker hangs up.
      const deadline = t0 + (SEND_TIMEOUT_S + 3) * 1000
      while (!closedAt && Date.now() < deadline) {
        if (!s.destroyed) s.write(maskedFrame(Buffer.alloc(0), OP_PING))
        await sleep(200)
      }
      peak = Math.max(peak, t.rss())
      // As the tracker left it: our own destroy() below must not count as its close.
      const closed = closedAt
      const stillOpen = (await t.metric('tracker_connections')) ?? -1
      probe.phase('after')
      await sleep(2000)
      await probe.stop()
      clearInterval(sampler)
      const rss1 = t.rss()
      s.destroy()
      const grew = peak - rss0
      const closedIn = closed ? closed - t0 : 0
      const drops = await t.metric('tracker_dropped_total', {reason: 'send_timeout'})
      const held =
        grew < PING_FLOOD_RSS_BOUND && closed !== 0 && closedIn <= (SEND_TIMEOUT_S + 3) * 1000 && probe.ratio('during') >= 0.9 && probe.ratio('after') >= 0.9
      return {
        held,
        evidence:
          `RSS ${mib(rss0)}->${mib(peak)} MiB peak (bound +${mib(PING_FLOOD_RSS_BOUND)}), ${mib(rss1)} after; ${mib(sent)} MiB of pings sent; ` +
          `${closed ? `closed after ${secs(closedIn)} s` : `still open after ${secs(deadline - t0)} s (tracker_connections ${stillOpen})`}; ` +
          `send_timeout drops ${drops ?? '?'}; legit ws ${probe.text('during')}; ${probe.text('after')}`,
      }
    },
  }
}

const PING_INTERVAL_S = 2

/** Sends only unsolicited pongs and never answers the tracker's pings. */
function pongOnly(io: Io): Attack {
  return {
    name: '3.pong-only',
    server: serverOf(io),
    workers: 'any',
    fast: true,
    budgetS: 30,
    async run(ctx) {
      const t = await ctx.tracker({protocol: 'ws', config: wsConfig(io, {ping_interval: PING_INTERVAL_S})})
      const s = await rawWebSocket(ctx, t.port)
      let closedAt = 0
      let pings = 0
      s.on('data', (d: Buffer) => {
        // Server frames are unmasked; a ping is 0x89 and a short length (counted roughly: enough to show they came).
        for (let i = 0; i + 1 < d.length; i++) if (d[i] === 0x89 && d[i + 1] <= 125) pings++
      })
      s.on('close', () => (closedAt ||= Date.now()))
      const t0 = Date.now()
      const bound = (2 * PING_INTERVAL_S + 3) * 1000
      while (!closedAt && Date.now() - t0 < bound) {
        if (!s.destroyed) s.write(maskedFrame(Buffer.alloc(0), OP_PONG))
        await sleep(100)
      }
      const closed = closedAt
      const open = Date.now() - t0
      const drops = await t.metric('tracker_dropped_total', {reason: 'ping_timeout'})
      s.destroy()
      return {
        held: closed !== 0,
        evidence:
          `ping_interval ${PING_INTERVAL_S} s: ${closed ? `closed after ${secs(closed - t0)} s` : `still open after ${secs(open)} s`}, ` +
          `${pings} pings seen, ${Math.round((Date.now() - t0) / 100)} pongs sent; ping_timeout drops ${drops ?? '?'}`,
      }
    },
  }
}

export const WS_CONTROL_ATTACKS: Attack[] = [pingFlood('batched'), pingFlood('node'), pongOnly('batched'), pongOnly('node')]
