import {randomBytes} from 'node:crypto'
import {
  type AnnounceRequest,
  type AnnounceResult,
  AnnounceStatus,
  EVENT_COMPLETED,
  EVENT_STOPPED,
  type ScrapeCounts,
  type SwarmBackend,
  type SwarmGauges,
  type SwarmLimits,
} from './backend.js'
import {PeerLists} from './peers.js'
import {Random, selectPeers} from './select.js'
import {TorrentTable} from './torrents.js'

/**
 * The in-memory swarm engine shared by the UDP and HTTP trackers (see SwarmBackend for what it
 * guarantees). Pure: no sockets, no timers, no clock (callers pass `now` in seconds). No
 * allocation per announce: requests come in and results go out through reusable objects, info
 * hashes are compared as bytes.
 *
 * Storage (bytes per peer matter at millions of peers): the torrent table (TorrentTable) gives
 * each torrent an id; each IP family's peers live in a PeerLists, indexed by that id. This class
 * ties them together and keeps the totals the metrics read.
 */
export class Swarm implements SwarmBackend {
  private readonly table: TorrentTable
  /** Peer lists of IPv4 [0] and IPv6 [1] peers. */
  private readonly lists: [PeerLists, PeerLists]
  private readonly random: Random
  private readonly keyScratch = new Uint8Array(18)

  // Stats, maintained as things change.
  readonly peers = [0, 0]
  seeders = 0
  leecherTotal = 0
  completedTotal = 0
  peersExpired = 0
  refusedTorrentLimit = 0
  refusedPeerLimit = 0

  constructor(
    readonly limits: SwarmLimits,
    seed?: number,
  ) {
    const k = randomBytes(24)
    const key = new Int32Array(6)
    for (let i = 0; i < 6; i++) key[i] = k.readInt32LE(i * 4)
    this.random = new Random(seed ?? k.readUInt32LE(20))
    this.table = new TorrentTable(key)
    this.lists = [new PeerLists(4, this.table.capacity, key), new PeerLists(6, this.table.capacity, key)]
  }

  /** Torrents held. */
  get torrents(): number {
    return this.table.size
  }

  private create(b: Uint8Array, o: number): number {
    const id = this.table.create(b, o)
    const lists = this.lists
    if (lists[0].count.length < this.table.capacity) for (const list of lists) list.grow(this.table.capacity)
    lists[0].reset(id)
    lists[1].reset(id)
    return id
  }

  private deleteTorrent(id: number): void {
    this.table.delete(id)
    for (let f = 0; f < 2; f++) {
      const list = this.lists[f]
      const n = list.count[id]
      if (n > 0) {
        const l = list.leechers[id]
        this.peers[f] -= n
        this.leecherTotal -= l
        this.seeders -= n - l
      }
      list.release(id)
    }
  }

  announce(req: AnnounceRequest, now: number, res: AnnounceResult): AnnounceStatus {
    const f = req.ipFamily === 4 ? 0 : 1
    const list = this.lists[f]
    res.status = AnnounceStatus.Ok
    res.peerCount = 0
    let id = this.table.find(req.infoHash, req.infoHashOffset)
    const stopped = req.event === EVENT_STOPPED
    if (id < 0) {
      if (stopped) {
        res.seeders = res.leechers = res.completed = 0
        return AnnounceStatus.Ok
      }
      if (this.table.size >= this.limits.maxTorrents) {
        this.refusedTorrentLimit++
        res.seeders = res.leechers = res.completed = 0
        res.status = AnnounceStatus.TorrentLimit
        return AnnounceStatus.TorrentLimit
      }
      id = this.create(req.infoHash, req.infoHashOffset)
    }
    // The key (ip, port) as the record stores it.
    const key = this.keyScratch
    const K = list.keyBytes
    for (let k = 0, n = list.ipBytes, ip = req.ip; k < n; k++) key[k] = ip[k]
    key[K - 2] = req.port >>> 8
    key[K - 1] = req.port & 0xff
    let p = list.find(id, key, 0)
    const expiry = now + this.limits.maxPeerAge

    let selfSeeder = false
    let selfStored = false
    if (stopped) {
      if (p >= 0) this.removePeer(f, id, p)
      p = -1
    } else if (p >= 0) {
      const wasSeeder = list.isSeeder(id, p)
      if (req.event === EVENT_COMPLETED && !wasSeeder) {
        this.table.completed[id]++
        this.completedTotal++
      }
      if (wasSeeder !== req.isSeeder) {
        p = list.setSeeder(id, p, req.isSeeder)
        if (req.isSeeder) {
          this.leecherTotal--
          this.seeders++
        } else {
          this.leecherTotal++
          this.seeders--
        }
      }
      list.update(id, p, req, expiry)
      selfStored = true
      selfSeeder = req.isSeeder
    } else {
      if (req.event === EVENT_COMPLETED) {
        this.table.completed[id]++
        this.completedTotal++
      }
      if (this.lists[0].count[id] + this.lists[1].count[id] >= this.limits.maxPeersPerTorrent) {
        this.refusedPeerLimit++
        res.status = AnnounceStatus.PeerLimit
      } else {
        p = list.insert(id, req, expiry)
        this.peers[f]++
        if (req.isSeeder) this.seeders++
        else this.leecherTotal++
        selfStored = true
        selfSeeder = req.isSeeder
      }
    }

    const v4 = this.lists[0]
    const v6 = this.lists[1]
    const l0 = v4.leechers[id]
    const l1 = v6.leechers[id]
    const s = v4.count[id] - l0 + v6.count[id] - l1
    res.seeders = s - (selfStored && selfSeeder ? 1 : 0)
    res.leechers = l0 + l1 - (selfStored && !selfSeeder ? 1 : 0)
    res.completed = this.table.completed[id]
    if (!stopped && req.numWant > 0) selectPeers(list, id, p, req.isSeeder, req.numWant, this.random, res)
    return res.status
  }

  private removePeer(f: 0 | 1, id: number, p: number): void {
    if (this.lists[f].remove(id, p)) this.leecherTotal--
    else this.seeders--
    this.peers[f]--
  }

  scrape(b: Uint8Array, o: number, out: ScrapeCounts): ScrapeCounts {
    const id = this.table.find(b, o)
    if (id < 0) {
      out.seeders = out.leechers = out.completed = 0
      return out
    }
    const v4 = this.lists[0]
    const v6 = this.lists[1]
    const l = v4.leechers[id] + v6.leechers[id]
    out.leechers = l
    out.seeders = v4.count[id] + v6.count[id] - l
    out.completed = this.table.completed[id]
    return out
  }

  /** As SwarmBackend says; also shrinks segments that became mostly empty and compacts pools. */
  clean(now: number, isAllowed?: (hashes: Uint8Array, offset: number) => boolean): void {
    const table = this.table
    for (let id = 0; id < table.idHigh; id++) {
      if (table.inUse[id] === 0) continue
      if (isAllowed && !isAllowed(table.hashes, id * 20)) {
        this.deleteTorrent(id)
        continue
      }
      for (let f = 0; f < 2; f++) {
        const list = this.lists[f]
        const n = list.count[id]
        if (n === 0) continue
        const l = list.leechers[id]
        list.expire(id, now)
        const removed = n - list.count[id]
        const leechers = l - list.leechers[id]
        this.peersExpired += removed
        this.peers[f] -= removed
        this.leecherTotal -= leechers
        this.seeders -= removed - leechers
      }
      if (this.lists[0].count[id] + this.lists[1].count[id] === 0) this.deleteTorrent(id)
    }
    this.lists[0].tidy()
    this.lists[1].tidy()
  }

  /** Copies family f's live segments into fresh chunks (see PeerLists.compact). */
  compact(f: 0 | 1): void {
    this.lists[f].compact()
  }

  forEachTorrent(fn: (hashes: Uint8Array, offset: number, seeders: number, leechers: number, completed: number) => void): void {
    const table = this.table
    const v4 = this.lists[0]
    const v6 = this.lists[1]
    for (let id = 0; id < table.idHigh; id++) {
      if (table.inUse[id] === 0) continue
      const l = v4.leechers[id] + v6.leechers[id]
      fn(table.hashes, id * 20, v4.count[id] + v6.count[id] - l, l, table.completed[id])
    }
  }

  /** Bytes held in peer chunks (for memory reports). */
  poolBytes(): number {
    return this.lists[0].pool.chunkBytes + this.lists[1].pool.chunkBytes
  }

  gauges(): SwarmGauges {
    return {
      torrents: () => this.table.size,
      peers: v => this.peers[v],
      seeders: () => this.seeders,
      leechers: () => this.leecherTotal,
      completed: () => this.completedTotal,
      peersExpired: () => this.peersExpired,
      refusals: () => ({torrent_limit: this.refusedTorrentLimit, peer_limit: this.refusedPeerLimit}),
    }
  }
}
