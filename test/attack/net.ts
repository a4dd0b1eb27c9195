/** Sockets as an attacker holds them: every wait bounded, every socket owned by the case. */
import {randomBytes} from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'
import {setTimeout as sleep} from 'node:timers/promises'
import {acceptKey} from '../../src/protocol/ws/frame.js'
import {handshakeRequest} from '../../loadtest/ws-socket.js'
import {RawHttp} from '../http-client.js'
import type {Context} from './suite.js'

export {sleep}

export interface Reply {
  status: number
  body: Buffer
  ms: number
}

/** One GET on a fresh connection (no agent, no keep-alive), failing after `timeoutMs`. */
export function request(port: number, path: string, options: {tls?: boolean; timeoutMs?: number} = {}): Promise<Reply> {
  const timeoutMs = options.timeoutMs ?? 2000
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const get = options.tls ? https.get : http.get
    const req = get({host: '127.0.0.1', port, path, agent: false, headers: {connection: 'close'}, rejectUnauthorized: false}, res => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => {
        clearTimeout(timer)
        resolve({status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - t0})
      })
      res.on('error', fail)
    })
    function fail(error: Error) {
      clearTimeout(timer)
      req.destroy()
      reject(error)
    }
    const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    req.on('error', fail)
  })
}

/** Polls `check` every `everyMs` until it is true or `ms` have passed; true if it became true. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return true
    if (Date.now() >= deadline) return false
    await sleep(Math.min(everyMs, Math.max(1, deadline - Date.now())))
  }
}

/** A TCP socket that is connected, or an error after `ms`. */
export function connect(port: number, ms = 3000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({port, host: '127.0.0.1'})
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no TCP connection within ${ms} ms`))
    }, ms)
    socket.once('connect', () => {
      clearTimeout(timer)
      resolve(socket)
    })
    socket.once('error', error => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/** A held connection: whether and when the server closed it. */
export interface Held {
  socket: net.Socket
  openedAt: number
  /** ms since the epoch when the server closed it; 0 while open. */
  closedAt: number
}

/**
 * Opens `count` TCP connections that the case owns, `batch` at a time; each records when the
 * server closes it. Connections that fail to open are left out.
 */
export async function holdConnections(ctx: Context, port: number, count: number, batch = 100): Promise<Held[]> {
  const held: Held[] = []
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.allSettled(Array.from({length: Math.min(batch, count - i)}, () => connect(port)))
    for (const r of opened) {
      if (r.status !== 'fulfilled') continue
      const h: Held = {socket: ctx.own(r.value), openedAt: Date.now(), closedAt: 0}
      r.value.on('error', () => {})
      r.value.on('close', () => (h.closedAt ||= Date.now()))
      r.value.on('end', () => (h.closedAt ||= Date.now()))
      held.push(h)
    }
  }
  return held
}

/**
 * A raw WebSocket after its handshake (the 101 checked): the attacker writes frames by hand.
 * Resolves with the socket and whatever came after the 101.
 */
export function rawWebSocket(ctx: Context, port: number, options: {tls?: boolean; ms?: number} = {}): Promise<net.Socket> {
  const ms = options.ms ?? 3000
  const key = randomBytes(16).toString('base64')
  const accept = acceptKey(key)
  return new Promise((resolve, reject) => {
    const socket: net.Socket = options.tls ? tls.connect({port, host: '127.0.0.1', rejectUnauthorized: false}) : net.connect({port, host: '127.0.0.1'})
    ctx.own(socket)
    let head = Buffer.alloc(0)
    const timer = setTimeout(() => fail('no 101 within ' + ms + ' ms'), ms)
    function fail(why: string) {
      clearTimeout(timer)
      socket.destroy()
      reject(new Error(why))
    }
    socket.once(options.tls ? 'secureConnect' : 'connect', () => socket.write(handshakeRequest(`127.0.0.1:${port}`, key)))
    socket.on('error', error => fail(error.message))
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onData)
      clearTimeout(timer)
      const text = head.toString('latin1', 0, end)
      if (!text.startsWith('HTTP/1.1 101') || !text.includes(accept)) return fail(`handshake refused: ${text.split('\r\n')[0]}`)
      socket.removeAllListeners('error')
      socket.on('error', () => {})
      resolve(socket)
    }
    socket.on('data', onData)
  })
}

/** The ClientHello that Node's TLS client sends first, captured from a listener of ours. */
export async function captureClientHello(): Promise<Buffer> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as net.AddressInfo).port
  try {
    const hello = new Promise<Buffer>((resolve, reject) => {
      server.once('connection', s => {
        s.once('data', (d: Buffer) => {
          resolve(d)
          s.destroy()
        })
        s.on('error', () => {})
      })
      setTimeout(() => reject(new Error('no ClientHello captured')), 3000)
    })
    const client = tls.connect({port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false})
    client.on('error', () => {})
    const bytes = await hello
    client.destroy()
    return bytes
  } finally {
    server.close()
  }
}

export const mib = (bytes: number): string => `${Math.round(bytes / 2 ** 20)}`
export const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}`

/**
 * `promise`, or an error after `ms`. Something that arrives late is handed to `dispose` (a
 * connection nobody waits for any more is closed).
 */
export function within<T>(promise: Promise<T>, ms: number, what: string, dispose?: (late: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  let late = false
  promise.then(
    v => late && dispose?.(v),
    () => {},
  )
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true
        reject(new Error(`${what}: nothing within ${ms} ms`))
      }, ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/** A RawHttp connection the case owns (test/http-client.ts), opened within 3 s. */
export async function openHttp(ctx: Context, port: number, options: {tls?: boolean} = {}): Promise<RawHttp> {
  const c = await within(RawHttp.open(port, '127.0.0.1', options), 3000, 'HTTP connection', late => late.close())
  return ctx.own(c)
}
