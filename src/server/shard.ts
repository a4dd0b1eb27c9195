import {Swarm, type SwarmBackend} from '../swarm/index.js'
import type {WorkerContext} from './runtime/worker-api.js'

/** The config keys a worker's swarm shard reads (every server config has them). */
export interface ShardConfig {
  limits: {max_torrents: number; max_peers_per_torrent: number}
  cleaning: {max_peer_age: number}
}

/**
 * The clock a worker runs on: seconds since the tracker's epoch (shared by all workers), read
 * once a second (and at cleaning) rather than per request.
 */
export class WorkerClock {
  /** Seconds since the tracker's epoch. */
  now = 0
  /** Date.now() at the last tick. */
  nowMs = 0

  constructor(private readonly epochMs: number) {
    this.tick()
  }

  tick(): void {
    this.nowMs = Date.now()
    this.now = Math.floor((this.nowMs - this.epochMs) / 1000)
  }
}

/** A worker's shard of the compact swarm (UDP and HTTP), with its clock. */
export class SwarmShard extends WorkerClock {
  readonly swarm: SwarmBackend

  constructor(private readonly ctx: WorkerContext<ShardConfig & WorkerContext['config']>) {
    super(ctx.epochMs)
    const cfg = ctx.config
    this.swarm = new Swarm({
      maxTorrents: cfg.limits.max_torrents,
      maxPeersPerTorrent: cfg.limits.max_peers_per_torrent,
      maxPeerAge: cfg.cleaning.max_peer_age,
    })
  }

  /** Expires peers, frees empty torrents and drops torrents the access list now refuses. */
  clean(): void {
    this.tick()
    const list = this.ctx.accessList
    this.swarm.clean(this.now, list.mode === 'off' ? undefined : (hash, offset) => list.allows(hash, offset))
  }
}
