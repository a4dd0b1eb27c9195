import {Swarm} from '../swarm/index.js'
import type {WorkerContext} from './runtime.js'

/** The config keys a worker's swarm shard reads (every server config has them). */
export interface ShardConfig {
  limits: {max_torrents: number; max_peers_per_torrent: number}
  cleaning: {max_peer_age: number}
}

/**
 * A worker's shard of the swarm with the clock it runs on: seconds since the tracker's epoch,
 * read once a second (and at cleaning) rather than per request.
 */
export class SwarmShard {
  readonly swarm: Swarm
  /** Seconds since the tracker's epoch (shared by all workers). */
  now = 0
  /** Date.now() at the last tick. */
  nowMs = 0

  constructor(private readonly ctx: WorkerContext<ShardConfig & WorkerContext['config']>) {
    const cfg = ctx.config
    this.swarm = new Swarm({
      maxTorrents: cfg.limits.max_torrents,
      maxPeersPerTorrent: cfg.limits.max_peers_per_torrent,
      maxPeerAge: cfg.cleaning.max_peer_age,
    })
    this.tick()
  }

  tick(): void {
    this.nowMs = Date.now()
    this.now = Math.floor((this.nowMs - this.ctx.epochMs) / 1000)
  }

  /** Expires peers, frees empty torrents and drops torrents the access list now refuses. */
  clean(): void {
    this.tick()
    const list = this.ctx.accessList
    this.swarm.clean(this.now, list.mode === 'off' ? undefined : (hash, offset) => list.allows(hash, offset))
  }
}
