/**
 * Legitimate clients that keep asking while an attack runs: one request every `intervalMs`, each
 * on its own with a deadline, latency recorded by phase ("during", "after").
 */
import {randomBytes} from 'node:crypto'
import WebSocket from 'ws'
import {announcePath} from '../../src/protocol/http/client.js'
import {decode} from '../http-client.js'
import {UdpClient} from '../harness.js'
import {binaryId} from '../ws-client.js'
import {request} from './net.js'
import type {Context} from './suite.js'

interface Attempt {
  phase: string
  /** When it was sent (ms since the epoch). */
  at: number
  /** Latency in ms; null when it failed or timed out. */
  ms: number | null
  error?: string
}

export interface PhaseSummary {
  sent: number
  answered: number
  p50: number
  max: number
}

/** One legitimate request; resolves when answered as it should be, rejects otherwise. */
export type LegitRequest = (timeoutMs: number) => Promise<void>

export class Probe {
  private readonly attempts: Attempt[] = []
  private readonly inFlight = new Set<Promise<void>>()
  private timer?: NodeJS.Timeout
  private current = 'before'

  constructor(
    private readonly fn: LegitRequest,
    readonly intervalMs = 250,
    readonly timeoutMs = 2000,
  ) {}

  start(phase = 'during'): this {
    this.current = phase
    this.fire()
    this.timer = setInterval(() => this.fire(), this.intervalMs)
    return this
  }

  phase(name: string): void {
    this.current = name
  }

  private fire(): void {
    const a: Attempt = {phase: this.current, at: Date.now(), ms: null}
    this.attempts.push(a)
    const t0 = performance.now()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs + 200)
    })
    const p = Promise.race([this.fn(this.timeoutMs), deadline])
      .then(
        () => {
          a.ms = performance.now() - t0
        },
        (error: Error) => {
          a.error = error.message
        },
      )
      .finally(() => {
        clearTimeout(timer)
        this.inFlight.delete(p)
      })
    this.inFlight.add(p)
  }

  /** Stops sending and waits for the requests in flight (each is bounded by its deadline). */
  async stop(): Promise<void> {
    clearInterval(this.timer)
    await Promise.all([...this.inFlight])
  }

  summary(phase: string): PhaseSummary {
    const list = this.attempts.filter(a => a.phase === phase)
    const ok = list
      .filter(a => a.ms !== null)
      .map(a => a.ms!)
      .sort((x, y) => x - y)
    return {sent: list.length, answered: ok.length, p50: ok[Math.floor(ok.length / 2)] ?? 0, max: ok[ok.length - 1] ?? 0}
  }

  /** "during 45/50, p50 3 ms, max 850 ms", and the last error when some failed. */
  text(phase: string): string {
    const s = this.summary(phase)
    const failed = this.attempts.filter(a => a.phase === phase && a.error !== undefined)
    const why = failed.length > 0 ? ` (last error: ${failed[failed.length - 1].error!.slice(0, 40)})` : ''
    return `${phase} ${s.answered}/${s.sent}${s.answered > 0 ? `, p50 ${Math.round(s.p50)} ms, max ${Math.round(s.max)} ms` : ''}${why}`
  }

  /**
   * How long after `t` (ms since the epoch) the first request sent at or after it was answered
   * (its send time plus its latency); null when none was.
   */
  firstAnswerAfter(t: number): number | null {
    const a = this.attempts.find(x => x.at >= t && x.ms !== null)
    return a ? a.at + a.ms! - t : null
  }

  /** Share answered of the requests sent from `t` on (1 when none were). */
  ratioSince(t: number): number {
    const list = this.attempts.filter(a => a.at >= t)
    return list.length === 0 ? 1 : list.filter(a => a.ms !== null).length / list.length
  }

  /** Share of the phase's requests answered (1 when none were sent). */
  ratio(phase: string): number {
    const s = this.summary(phase)
    return s.sent === 0 ? 1 : s.answered / s.sent
  }
}

/** Announces on a fresh HTTP(S) connection each time: a 200 with an `interval`. */
export function httpAnnouncer(port: number, options: {tls?: boolean; infoHash?: Buffer} = {}): LegitRequest {
  const infoHash = options.infoHash ?? randomBytes(20)
  return async timeoutMs => {
    const r = await request(port, announcePath({infoHash, peerId: randomBytes(20), port: 6881, left: 1}), {tls: options.tls, timeoutMs})
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`)
    const body = decode(r.body)
    if (body['failure reason']) throw new Error(`failure reason: ${Buffer.from(body['failure reason']).toString()}`)
    if (typeof body.interval !== 'number') throw new Error('no interval in the announce reply')
  }
}

/** The metrics endpoint on a fresh connection. */
export function metricsReader(port: number): LegitRequest {
  return async timeoutMs => {
    const r = await request(port, '/metrics', {timeoutMs})
    if (r.status !== 200) throw new Error(`metrics HTTP ${r.status}`)
  }
}

/** A fresh WebSocket each time (a browser arriving): open, announce, the announce reply. */
export function wsAnnouncer(port: number, options: {tls?: boolean} = {}): LegitRequest {
  const infoHash = binaryId()
  return timeoutMs =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`${options.tls ? 'wss' : 'ws'}://127.0.0.1:${port}`, {
        rejectUnauthorized: false,
        perMessageDeflate: false,
        handshakeTimeout: timeoutMs,
      })
      const done = (error?: Error) => {
        clearTimeout(timer)
        ws.terminate()
        if (error) reject(error)
        else resolve()
      }
      const timer = setTimeout(() => done(new Error(`no announce reply within ${timeoutMs} ms`)), timeoutMs)
      ws.on('open', () =>
        ws.send(JSON.stringify({action: 'announce', info_hash: infoHash, peer_id: binaryId(), left: 1, numwant: 5, uploaded: 0, downloaded: 0})),
      )
      ws.on('message', data => {
        const m = JSON.parse(data.toString())
        if (m['failure reason']) done(new Error(`failure reason: ${m['failure reason']}`))
        else if (m.action === 'announce' && 'interval' in m) done()
      })
      ws.on('error', error => done(error))
      ws.on('close', () => done(new Error('closed before the announce reply')))
    })
}

/**
 * Announces over UDP from one socket (a connection id, renewed when a request goes unanswered),
 * alternating `infoHashes` (e.g. one per worker shard).
 */
export async function udpAnnouncer(ctx: Context, port: number, infoHashes: Buffer[] = [randomBytes(20)]): Promise<LegitRequest> {
  const c = ctx.own(await UdpClient.open(4, port))
  let connected = false
  let turn = 0
  return async timeoutMs => {
    const t0 = Date.now()
    if (!connected) {
      await c.connect()
      connected = true
    }
    const infoHash = infoHashes[turn++ % infoHashes.length]
    try {
      const r = await c.request(c.announceBytes({infoHash, peerId: randomBytes(20), port: 6881}), Math.max(1, timeoutMs - (Date.now() - t0)))
      if (r.action !== 1) throw new Error(`expected an announce reply, got action ${r.action}`)
    } catch (error) {
      connected = false
      throw error
    }
  }
}
