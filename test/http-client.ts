/** A raw HTTP/1.1 client for tests: exact bytes out, every response parsed in order. */
import net from 'node:net'
import tls from 'node:tls'
import bencode from 'bencode'
import {formatIp} from '../src/net/ip.js'

export interface HttpReply {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** Percent-encodes every byte of binary values; numbers and plain strings go as they are. */
export function query(params: Record<string, string | number | Uint8Array | Uint8Array[]>): string {
  const parts: string[] = []
  for (const [k, v] of Object.entries(params)) {
    const values = Array.isArray(v) ? v : [v]
    for (const one of values) {
      parts.push(`${k}=${one instanceof Uint8Array ? [...one].map(b => '%' + b.toString(16).padStart(2, '0')).join('') : String(one)}`)
    }
  }
  return parts.join('&')
}

export class RawHttp {
  private buf = Buffer.alloc(0)
  private waiters: (() => void)[] = []
  ended = false

  private constructor(readonly socket: net.Socket) {
    socket.on('data', chunk => {
      this.buf = Buffer.concat([this.buf, chunk])
      this.wake()
    })
    socket.on('close', () => {
      this.ended = true
      this.wake()
    })
    socket.on('error', () => {})
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  static open(port: number, host = '127.0.0.1', options: {tls?: boolean} = {}): Promise<RawHttp> {
    return new Promise((resolve, reject) => {
      const socket = options.tls
        ? tls.connect({port, host, rejectUnauthorized: false, servername: 'localhost'}, () => resolve(new RawHttp(socket)))
        : net.connect({port, host}, () => resolve(new RawHttp(socket)))
      socket.once('error', reject)
    })
  }

  send(data: string | Buffer): void {
    this.socket.write(data)
  }

  /** Sends a GET for `path` (with Host); `headers` are added as given. */
  get(path: string, headers: string[] = []): void {
    this.send(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n${headers.map(h => h + '\r\n').join('')}\r\n`)
  }

  /** The next complete response; fails after `ms` or when the connection closes first. */
  async next(ms = 5000): Promise<HttpReply> {
    const deadline = Date.now() + ms
    for (;;) {
      const reply = this.take()
      if (reply) return reply
      if (this.ended) throw new Error(`connection closed with ${this.buf.length} unparsed bytes and no complete response`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no complete response within ${ms} ms`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  private take(): HttpReply | undefined {
    const end = this.buf.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n')
    const status = Number(lines[0].split(' ')[1])
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = Number(headers['content-length'])
    if (this.buf.length < end + 4 + length) return undefined
    const body = Buffer.from(this.buf.subarray(end + 4, end + 4 + length))
    this.buf = this.buf.subarray(end + 4 + length)
    return {status, headers, body}
  }

  /** Resolves when the server has closed the connection; fails after `ms`. */
  async closed(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error(`connection still open after ${ms} ms`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, 50)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  close(): void {
    this.socket.destroy()
  }
}

/** One request on a fresh connection. */
export async function httpGet(port: number, path: string, options: {host?: string; tls?: boolean; headers?: string[]} = {}): Promise<HttpReply> {
  const c = await RawHttp.open(port, options.host, {tls: options.tls})
  try {
    c.get(path, options.headers)
    return await c.next()
  } finally {
    c.close()
  }
}

// biome-ignore lint/suspicious/noExplicitAny: whatever bencode decodes; tests check its shape
export type Bencoded = any

export function decode(body: Buffer): Bencoded {
  return bencode.decode(body)
}

/** Compact peers (6 or 18 bytes each) as "ip:port" strings. */
export function compactPeers(bytes: Uint8Array, size: 6 | 18): string[] {
  const out: string[] = []
  for (let at = 0; at + size <= bytes.length; at += size) {
    const b = Buffer.from(bytes.subarray(at, at + size))
    const ip = formatIp(b, 0, size === 6 ? 4 : 6)
    out.push(`${ip}:${b.readUInt16BE(size - 2)}`)
  }
  return out
}

/**
 * The `files` of a decoded scrape, keyed by info hash in hex. bencode's decoder turns a key
 * into UTF-8 text, or into hex when the bytes are not UTF-8.
 */
export function scrapeFiles(decoded: Bencoded): Map<string, {complete: number; incomplete: number; downloaded: number}> {
  const out = new Map()
  for (const [k, v] of Object.entries(decoded.files as object)) {
    const hex = /^[0-9a-f]{40}$/.test(k) ? k : Buffer.from(k, 'utf8').toString('hex')
    out.set(hex, v)
  }
  return out
}
