/**
 * Fixed-size peer records kept in large shared chunks, one segment per (torrent, IP family).
 * Segments come in fine size classes (<= 25% growth), so slack stays small, and are carved
 * from 256 KiB chunks, so a million torrents cost a few hundred ArrayBuffers, not a million.
 */

const CHUNK_BYTES = 256 * 1024

/** Segment capacities, in records. */
export const SIZE_CLASSES: readonly number[] = (() => {
  const out = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16]
  let c = 16
  while (c < 1 << 25) {
    c = Math.ceil((c * 1.25) / 4) * 4
    out.push(c)
  }
  return out
})()

/** Smallest class that holds `records`. */
export function classFor(records: number): number {
  let lo = 0
  let hi = SIZE_CLASSES.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (SIZE_CLASSES[mid] >= records) hi = mid
    else lo = mid + 1
  }
  return lo
}

export class SegmentPool {
  readonly chunks: Uint8Array[] = []
  /** Per class: free segments as (chunk, byte offset) pairs. */
  private readonly free: number[][] = SIZE_CLASSES.map(() => [])
  /** Per class: chunk being carved and the next free byte in it (-1: none). */
  private readonly bumpChunk = new Int32Array(SIZE_CLASSES.length).fill(-1)
  private readonly bumpOffset = new Float64Array(SIZE_CLASSES.length)
  /** Allocated bytes, for memory reports. */
  chunkBytes = 0
  /** Bytes in released segments waiting for reuse. */
  freeBytes = 0

  constructor(readonly recordSize: number) {}

  segmentBytes(cls: number): number {
    return SIZE_CLASSES[cls] * this.recordSize
  }

  /** Returns the chunk id; the byte offset is left in `lastOffset`. */
  lastOffset = 0

  alloc(cls: number): number {
    const list = this.free[cls]
    if (list.length > 0) {
      this.freeBytes -= this.segmentBytes(cls)
      this.lastOffset = list.pop()!
      return list.pop()!
    }
    const bytes = this.segmentBytes(cls)
    let chunk = this.bumpChunk[cls]
    if (chunk < 0 || this.bumpOffset[cls] + bytes > this.chunks[chunk].length) {
      const size = Math.max(CHUNK_BYTES - (CHUNK_BYTES % bytes), bytes)
      this.chunks.push(new Uint8Array(size))
      this.chunkBytes += size
      chunk = this.chunks.length - 1
      this.bumpChunk[cls] = chunk
      this.bumpOffset[cls] = 0
    }
    this.lastOffset = this.bumpOffset[cls]
    this.bumpOffset[cls] += bytes
    return chunk
  }

  release(cls: number, chunk: number, offset: number): void {
    this.free[cls].push(chunk, offset)
    this.freeBytes += this.segmentBytes(cls)
  }
}
