/**
 * Class 4: stalled TLS handshakes. Under an open-file limit of 1,024, 1,100 connections to the
 * TLS port that never finish their handshake (silent, or half a ClientHello): a legitimate client
 * and the metrics endpoint must still be served, and the stalled sockets closed within the
 * handshake bound (request_timeout for HTTPS, send_timeout for WSS) plus a couple of seconds.
 */
import {captureClientHello, holdConnections, secs, sleep} from './net.js'
import {httpAnnouncer, metricsReader, Probe, wsAnnouncer} from './probe.js'
import type {Attack} from './suite.js'

const NOFILE = 1024
const STALLED = 1100
/** Below the open-file limit, so that the tracker can keep its own files and the metrics endpoint. */
const MAX_CONNECTIONS = 900
const TIMEOUT_S = 10

function tlsStall(server: 'https' | 'wss', variant: 'silent' | 'half-hello'): Attack {
  return {
    name: `4.tls-stall.${variant}`,
    server,
    workers: 'any',
    budgetS: 60,
    async run(ctx) {
      const http = server === 'https'
      const t = await ctx.tracker({
        protocol: http ? 'http' : 'ws',
        tls: true,
        nofile: NOFILE,
        config: {connections: {max_connections: MAX_CONNECTIONS, ...(http ? {request_timeout: TIMEOUT_S} : {send_timeout: TIMEOUT_S})}},
      })
      const hello = variant === 'half-hello' ? await captureClientHello() : null
      await sleep(300)
      const fds0 = t.fds()
      const legit = new Probe(http ? httpAnnouncer(t.port, {tls: true}) : wsAnnouncer(t.port, {tls: true}), 500)
      const metrics = new Probe(metricsReader(t.ports.metrics), 500)
      const t0 = Date.now()
      // The open-file limit is per process: as many per worker.
      const stalled = STALLED * ctx.workers
      const conns = await holdConnections(ctx, t.port, stalled)
      if (hello) for (const h of conns) h.socket.write(hello.subarray(0, Math.floor(hello.length / 2)))
      const opened = Date.now()
      legit.start('during')
      metrics.start('during')
      // The attack lasts until the tracker has closed them (its fd count back near where it was).
      const bound = (TIMEOUT_S + 3) * 1000
      let peak = t.fds()
      let fellAt = 0
      while (Date.now() - t0 < bound) {
        const fds = t.fds()
        peak = Math.max(peak, fds)
        if (fds <= fds0 + 50 && Date.now() - opened > 500) {
          fellAt = Date.now()
          break
        }
        await sleep(250)
      }
      const closedByTracker = conns.filter(h => h.closedAt !== 0).length
      const fdsEnd = t.fds()
      legit.phase('after')
      metrics.phase('after')
      for (const h of conns) h.socket.destroy()
      await sleep(2000)
      await Promise.all([legit.stop(), metrics.stop()])
      const drops = await t.byReason('tracker_dropped_total')
      const legitName = http ? 'https' : 'wss'
      return {
        held: fellAt !== 0 && legit.ratio('during') >= 0.9 && metrics.ratio('during') >= 0.9 && legit.ratio('after') >= 0.9,
        evidence:
          `${conns.length}/${stalled} connected${hello ? ` (each sent ${Math.floor(hello.length / 2)} of ${hello.length} ClientHello bytes)` : ''}; ` +
          `tracker fds ${fds0}->${peak} peak, ${fellAt ? `back to ${fdsEnd} after ${secs(fellAt - t0)} s` : `${fdsEnd} after ${secs(Date.now() - t0)} s`}; ` +
          `${closedByTracker} closed by the tracker; drops: ${drops}; legit ${legitName} ${legit.text('during')}, ${legit.text('after')}; metrics ${metrics.text('during')}`,
      }
    },
  }
}

export const TLS_STALL_ATTACKS: Attack[] = [
  tlsStall('https', 'silent'),
  tlsStall('https', 'half-hello'),
  tlsStall('wss', 'silent'),
  tlsStall('wss', 'half-hello'),
]
