import {SCRAPE_ENTRY_MAX, writeScrapeEntry} from '../../protocol/http/response.js'
import type {SwarmBackend} from '../../swarm/index.js'
import type {FullScrapeFormat} from '../full-scrape.js'
import type {WorkerContext} from '../runtime/worker-api.js'

const OPEN = Buffer.from('d5:filesd')
const CLOSE = Buffer.from('ee')
/** A part starts with 257 offsets (u32): where each first hash byte's entries start, and the end. */
const INDEX_BYTES = 257 * 4

/**
 * HTTP full-scrape parts: a shard's bencoded scrape entries sorted by info hash, preceded by 257
 * offsets (u32) marking where each first byte's entries start. Shards split hashes by first
 * byte, so merging the parts is concatenating ranges, and the reply's keys come out sorted as
 * bencoded dictionaries need.
 */
export class BencodeFullScrape implements FullScrapeFormat {
  /** The worker owning each first byte of an info hash. */
  private readonly owners = new Uint16Array(256)

  constructor(
    private readonly swarm: SwarmBackend,
    ctx: Pick<WorkerContext, 'ownerOf'>,
  ) {
    const hash = new Uint8Array(20)
    for (let byte = 0; byte < 256; byte++) {
      hash[0] = byte
      this.owners[byte] = ctx.ownerOf(hash, 0)
    }
  }

  part(): Buffer {
    const ids: number[] = []
    const hashes: Buffer[] = []
    const counts: number[] = []
    this.swarm.forEachTorrent((h, o, seeders, leechers, completed) => {
      if (seeders + leechers === 0) return
      ids.push(ids.length)
      hashes.push(Buffer.from(h.subarray(o, o + 20)))
      counts.push(seeders, completed, leechers)
    })
    ids.sort((a, b) => Buffer.compare(hashes[a], hashes[b]))
    const part = Buffer.allocUnsafe(INDEX_BYTES + ids.length * SCRAPE_ENTRY_MAX)
    let at = INDEX_BYTES
    let byte = 0
    for (const i of ids) {
      while (byte <= hashes[i][0]) part.writeUInt32LE(at, 4 * byte++)
      at = writeScrapeEntry(part, at, hashes[i], 0, counts[3 * i], counts[3 * i + 1], counts[3 * i + 2])
    }
    while (byte <= 256) part.writeUInt32LE(at, 4 * byte++)
    return Buffer.from(part.subarray(0, at))
  }

  merge(parts: readonly (Buffer | undefined)[]): Buffer {
    const pieces: Buffer[] = [OPEN]
    for (let byte = 0; byte < 256; byte++) {
      const part = parts[this.owners[byte]]
      // A part too short for its index is not one (never from this build).
      if (!part || part.length < INDEX_BYTES) continue
      const from = part.readUInt32LE(4 * byte)
      const to = part.readUInt32LE(4 * (byte + 1))
      if (to > from && from >= INDEX_BYTES && to <= part.length) pieces.push(part.subarray(from, to))
    }
    pieces.push(CLOSE)
    return Buffer.concat(pieces)
  }
}
