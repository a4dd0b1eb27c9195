import dgram from 'node:dgram'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {defaultsOf, formatSocketAddress, httpSchema, udpSchema, wsSchema, type HttpConfig, type UdpConfig, type WsConfig} from '../src/config/index.js'
import {runTracker} from '../src/server/runtime/supervisor.js'
import type {RunningTracker} from '../src/server/runtime/worker-api.js'
import * as udp from '../src/protocol/udp/index.js'

export const tempDir = (prefix = 'tracker-test-'): string => mkdtempSync(join(tmpdir(), prefix))

type DeepPartial<T> = {[K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K]}

export interface TestTracker<C = UdpConfig> {
  tracker: RunningTracker
  port4: number
  port6: number
  metricsUrl: string
  config: C
  stop(): Promise<void>
}

/** Test defaults: loopback ephemeral ports, temp pid file, quiet; then `overrides` by section. */
function testConfig<
  C extends {pid_file: string; log_level: string; network: {address_ipv4: string; address_ipv6: string}; metrics: {prometheus_endpoint_address: string}},
>(protocol: string, config: C, overrides: object): C {
  config.pid_file = join(tempDir(), `tracker-${protocol}.pid`)
  config.log_level = 'off'
  config.network.address_ipv4 = '127.0.0.1:0'
  config.network.address_ipv6 = '[::1]:0'
  config.metrics.prometheus_endpoint_address = '127.0.0.1:0'
  for (const [k, v] of Object.entries(overrides)) {
    const target = config as unknown as Record<string, unknown>
    if (typeof v === 'object' && v !== null) Object.assign(target[k] as object, v)
    else target[k] = v
  }
  return config
}

async function startTracker<C extends UdpConfig | HttpConfig | WsConfig>(protocol: 'udp' | 'http' | 'ws', config: C): Promise<TestTracker<C>> {
  const tracker = await runTracker({protocol, config, workerModule: new URL(`../src/server/${protocol}/worker.js`, import.meta.url).href})
  const port = (family: 4 | 6) => tracker.listeners.find(l => l.service !== 'metrics' && l.family === family)!.port
  const metrics = tracker.listeners.find(l => l.service === 'metrics')
  return {
    tracker,
    config,
    port4: config.network.use_ipv4 ? port(4) : 0,
    port6: config.network.use_ipv6 ? port(6) : 0,
    metricsUrl: metrics ? `http://${formatSocketAddress(metrics.host, metrics.port)}${metrics.path}` : '',
    stop: () => tracker.stop(),
  }
}

/** Starts a UDP tracker in this process on loopback ephemeral ports. */
export async function startUdpTracker(overrides: DeepPartial<UdpConfig> = {}): Promise<TestTracker<UdpConfig>> {
  const config = defaultsOf(udpSchema) as UdpConfig
  config.network.socket_recv_buffer_size = 0
  return startTracker('udp', testConfig('udp', config, overrides))
}

/** Starts a WebTorrent tracker in this process on loopback ephemeral ports. */
export async function startWsTracker(overrides: DeepPartial<WsConfig> = {}): Promise<TestTracker<WsConfig>> {
  return startTracker('ws', testConfig('ws', defaultsOf(wsSchema) as WsConfig, overrides))
}

/** Starts an HTTP tracker in this process on loopback ephemeral ports. */
export async function startHttpTracker(overrides: DeepPartial<HttpConfig> = {}): Promise<TestTracker<HttpConfig>> {
  return startTracker('http', testConfig('http', defaultsOf(httpSchema) as HttpConfig, overrides))
}

/** The HTTP tracker's two I/O paths, for tests that run on both. */
export const HTTP_IO = [
  {batched: true, name: 'batched I/O'},
  {batched: false, name: 'Node sockets'},
] as const

/** startHttpTracker on one I/O path (`batched_io`), whatever the overrides say of the rest. */
export function httpTrackerOn(batched: boolean): typeof startHttpTracker {
  return (overrides = {}) => startHttpTracker({...overrides, network: {...overrides.network, batched_io: batched}})
}

/** A BEP 15 client socket for tests: request/response with a timeout, and "expect silence". */
export class UdpClient {
  readonly socket: dgram.Socket
  /** Datagrams nobody is waiting for (tests that expect silence or raw bytes read these). */
  private readonly inbox: Buffer[] = []
  private waiter?: () => void
  /** Requests in flight, by transaction id: many may be outstanding on one socket. */
  private readonly pending = new Map<number, (m: Buffer) => void>()
  readonly peerSize: 6 | 18
  connectionId: Uint8Array = new Uint8Array(8)
  private tid = 1

  private constructor(
    readonly family: 4 | 6,
    readonly port: number,
    readonly host: string,
  ) {
    this.socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6')
    this.peerSize = family === 4 ? 6 : 18
    this.socket.on('message', m => {
      const resolve = m.length >= 8 ? this.pending.get(m.readUInt32BE(4)) : undefined
      if (resolve) {
        this.pending.delete(m.readUInt32BE(4))
        resolve(m)
        return
      }
      this.inbox.push(m)
      this.waiter?.()
    })
  }

  static async open(family: 4 | 6, port: number, bindAddress?: string): Promise<UdpClient> {
    const host = family === 4 ? '127.0.0.1' : '::1'
    const c = new UdpClient(family, port, host)
    await new Promise<void>(resolve => c.socket.bind({port: 0, address: bindAddress ?? host}, () => resolve()))
    c.socket.unref() // a failed test that skips close() must not hang the runner
    return c
  }

  get localPort(): number {
    return this.socket.address().port
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.send(bytes, this.port, this.host)
  }

  /** Next unclaimed datagram, or undefined after `ms`. */
  async receive(ms = 1000): Promise<Buffer | undefined> {
    if (this.inbox.length > 0) return this.inbox.shift()
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => resolve(), ms)
      this.waiter = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    this.waiter = undefined
    return this.inbox.shift()
  }

  /** Sends a request and waits for the reply carrying the same transaction id (bytes 12..15). */
  async request(bytes: Uint8Array, ms = 2000): Promise<udp.UdpResponse> {
    const tid = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).readUInt32BE(12)
    const reply = new Promise<Buffer | undefined>(resolve => {
      const timer = setTimeout(() => {
        this.pending.delete(tid)
        resolve(undefined)
      }, ms)
      this.pending.set(tid, m => {
        clearTimeout(timer)
        resolve(m)
      })
    })
    this.sendRaw(bytes)
    const m = await reply
    if (!m) throw new Error(`no reply within ${ms} ms to transaction ${tid}`)
    const r = udp.parseResponse(m, m.length, this.peerSize)
    if (!r) throw new Error(`unparseable reply ${m.toString('hex')}`)
    return r
  }

  async connect(): Promise<Uint8Array> {
    const b = Buffer.alloc(16)
    udp.writeConnectRequest(b, this.tid++)
    const r = await this.request(b)
    if (r.action !== 0) throw new Error(`expected connect, got ${JSON.stringify(r)}`)
    this.connectionId = r.connectionId
    return r.connectionId
  }

  announceBytes(f: Partial<udp.AnnounceFields> & {infoHash: Uint8Array; peerId: Uint8Array; port: number}): Buffer {
    const b = Buffer.alloc(98)
    udp.writeAnnounceRequest(b, {
      connectionId: this.connectionId,
      transactionId: this.tid++,
      downloaded: 0,
      left: 100,
      uploaded: 0,
      event: udp.EVENT_STARTED,
      numWant: 50,
      ...f,
    })
    return b
  }

  async announce(f: Partial<udp.AnnounceFields> & {infoHash: Uint8Array; peerId: Uint8Array; port: number}) {
    const r = await this.request(this.announceBytes(f))
    if (r.action !== 1) throw new Error(`expected announce reply, got ${JSON.stringify(r)}`)
    return r
  }

  async scrape(hashes: Uint8Array[]) {
    const b = Buffer.alloc(16 + 20 * hashes.length)
    udp.writeScrapeRequest(b, this.connectionId, this.tid++, hashes)
    return this.request(b)
  }

  close(): void {
    this.socket.close()
  }
}

export async function fetchMetrics(url: string): Promise<string> {
  const res = await fetch(url)
  return res.text()
}

/** Value of one sample in Prometheus text, e.g. metric('tracker_peers{ip_version="4",worker_index="0"}'). */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  return undefined
}
