/** Real third-party client code against our trackers: the bittorrent-tracker npm client. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {once} from 'node:events'
import Client from 'bittorrent-tracker'
import {startHttpTracker, startUdpTracker, startWsTracker} from './harness.js'
import {nastyId} from './helpers.js'

/** The first `event` from `emitter`, or a failure naming what did not happen. */
async function next(emitter: Client, event: string, what: string, ms = 5000): Promise<unknown[]> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), ms)
  try {
    return await once(emitter, event, {signal: ac.signal})
  } catch {
    throw new Error(`no "${event}" within ${ms} ms: ${what}`)
  } finally {
    clearTimeout(timer)
  }
}

/** Two clients of one torrent at `url`: they count, find and scrape each other. */
async function clientsMeet(url: string): Promise<void> {
  const clients: Client[] = []
  try {
    const infoHash = Buffer.from(nastyId())
    const make = (port: number, left: number) => {
      const c = new Client({infoHash, peerId: Buffer.from(nastyId()), announce: [url], port, getAnnounceOpts: () => ({left})})
      c.on('warning', () => {})
      clients.push(c)
      return c
    }
    const seeder = make(6881, 0)
    seeder.start()
    const first = (await next(seeder, 'update', `seeder announce to ${url}`))[0] as {complete: number; incomplete: number}
    assert.deepEqual([first.complete, first.incomplete], [0, 0], 'the announcer is not counted')
    const leecher = make(6882, 1000)
    const peer = next(leecher, 'peer', `leecher learns of the seeder via ${url}`)
    leecher.start()
    const update = (await next(leecher, 'update', `leecher announce to ${url}`))[0] as {complete: number; incomplete: number}
    assert.deepEqual([update.complete, update.incomplete], [1, 0])
    const [address] = (await peer) as [string]
    assert.match(address, /:6881$/, `the leecher is told about the seeder: ${address}`)
    leecher.scrape()
    const scrape = (await next(leecher, 'scrape', `scrape via ${url}`))[0] as {complete: number; incomplete: number; downloaded: number}
    assert.deepEqual([scrape.complete, scrape.incomplete], [1, 1])
  } finally {
    await Promise.all(clients.map(c => new Promise<void>(resolve => c.destroy(() => resolve()))))
  }
}

test('bittorrent-tracker clients announce, find each other and scrape over UDP', async () => {
  const t = await startUdpTracker()
  try {
    // Its UDP client opens only udp4 sockets; our own client covers IPv6 (udp-server tests).
    await clientsMeet(`udp://127.0.0.1:${t.port4}`)
  } finally {
    await t.stop()
  }
})

test('bittorrent-tracker clients announce, find each other and scrape over HTTP (IPv4 and IPv6)', async () => {
  const t = await startHttpTracker()
  try {
    await clientsMeet(`http://127.0.0.1:${t.port4}/announce`)
    await clientsMeet(`http://[::1]:${t.port6}/announce`)
  } finally {
    await t.stop()
  }
})

test('two bittorrent-tracker clients open a WebRTC data channel signalled through our WebTorrent tracker', async () => {
  const t = await startWsTracker()
  const {default: wrtc} = await import('@roamhq/wrtc')
  const clients: Client[] = []
  try {
    const infoHash = Buffer.from(nastyId())
    const make = (left: number) => {
      // The client shares one socket per tracker URL within a process, and a connection may hold
      // one peer per torrent: a path per client gives each its own connection (any path works).
      // No STUN servers (loopback only, no internet): ICE gathering finishes at once.
      const c = new Client({
        infoHash,
        peerId: Buffer.from(nastyId()),
        announce: [`ws://127.0.0.1:${t.port4}/${clients.length}`],
        port: 6881,
        wrtc,
        rtcConfig: {iceServers: []},
        getAnnounceOpts: () => ({left, numwant: 2}),
      })
      c.on('warning', () => {})
      clients.push(c)
      return c
    }
    const seeder = make(0)
    const seederPeer = next(seeder, 'peer', 'the seeder is offered a WebRTC peer', 15_000)
    seeder.start()
    const first = (await next(seeder, 'update', 'seeder announce'))[0] as {complete: number; incomplete: number}
    assert.deepEqual([first.complete, first.incomplete], [0, 0])
    const leecher = make(1000)
    const leecherPeer = next(leecher, 'peer', 'the leecher connects to the seeder', 15_000)
    leecher.start()
    type Peer = {
      on(e: string, f: (d: unknown) => void): void
      once(e: string, f: (d: unknown) => void): void
      send(d: string): void
      connected: boolean
      destroy(): void
    }
    const [a] = (await leecherPeer) as [Peer]
    const [b] = (await seederPeer) as [Peer]
    const connected = (p: Peer) => (p.connected ? Promise.resolve() : new Promise<void>(resolve => p.once('connect', () => resolve())))
    await Promise.all([connected(a), connected(b)])
    const received = new Promise<string>(resolve => b.once('data', d => resolve(Buffer.from(d as Uint8Array).toString())))
    a.send('hello through a data channel')
    assert.equal(await received, 'hello through a data channel')
    a.destroy()
    b.destroy()
  } finally {
    await Promise.all(clients.map(c => new Promise<void>(resolve => c.destroy(() => resolve()))))
    await t.stop()
  }
})
