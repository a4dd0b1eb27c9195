import {SCRAPE_CLOSE, SCRAPE_OPEN, scrapeEntry} from '../../protocol/ws/index.js'
import type {WebTorrentBackend} from '../../swarm/index.js'
import type {FullScrapeFormat} from '../full-scrape.js'

const JSON_OPEN = Buffer.from(SCRAPE_OPEN)
const COMMA = Buffer.from(',')
const JSON_CLOSE = Buffer.from(SCRAPE_CLOSE)

/** WebSocket full-scrape parts: a shard's `"hash":{...}` entries, joined by commas. */
export class JsonFullScrape implements FullScrapeFormat {
  constructor(private readonly swarm: WebTorrentBackend) {}

  part(): Buffer {
    const entries: string[] = []
    this.swarm.forEachTorrent((infoHash, complete, incomplete, downloaded) => {
      entries.push(scrapeEntry(infoHash, complete, incomplete, downloaded))
    })
    return Buffer.from(entries.join(','))
  }

  merge(parts: readonly (Buffer | undefined)[]): Buffer {
    const pieces: Buffer[] = [JSON_OPEN]
    for (const part of parts) {
      if (!part || part.length === 0) continue
      if (pieces.length > 1) pieces.push(COMMA)
      pieces.push(part)
    }
    pieces.push(JSON_CLOSE)
    return Buffer.concat(pieces)
  }
}
