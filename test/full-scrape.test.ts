/** The full-scrape builder over real meshes: parts in chunks, merged replies cached until a part changes. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {FullScrape, type FullScrapeFormat} from '../src/server/full-scrape.js'
import {Mesh, type MeshLimits} from '../src/server/mesh.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Parts the test sets; the reply is every part with `|` between, missing ones as `-`. */
class TestFormat implements FullScrapeFormat {
  next: Buffer = Buffer.alloc(0)
  merges = 0
  part(): Buffer {
    return this.next
  }
  merge(parts: readonly (Buffer | undefined)[]): Buffer {
    this.merges++
    return Buffer.from(parts.map(p => (p ? p.toString('latin1') : '-')).join('|'), 'latin1')
  }
}

interface Node {
  mesh: Mesh
  format: TestFormat
  scrape: FullScrape
}

async function workers(count: number, chunkBytes: number, meshLimits: Partial<MeshLimits> = {}): Promise<Node[]> {
  const dir = mkdtempSync(join(tmpdir(), 'full-scrape-'))
  const nodes = Array.from({length: count}, (_, index): Node => {
    const mesh = new Mesh(index, count, dir, reason => assert.fail(`mesh ${index}: ${reason}`), meshLimits)
    const format = new TestFormat()
    const scrape = new FullScrape({index, count, mesh}, format, 60_000, chunkBytes)
    // Only chunks travel: a frame longer than one would break the link.
    mesh.limitFrames(scrape.maxFrame)
    mesh.onMessage((from, type, buf, offset, length) => assert.ok(scrape.onFrame(from, type, buf, offset, length)))
    return {mesh, format, scrape}
  })
  await Promise.all(nodes.map(n => n.mesh.listen()))
  await Promise.all(nodes.map(n => n.mesh.connect()))
  return nodes
}

async function closeAll(nodes: Node[]): Promise<void> {
  for (const n of nodes) n.scrape.close()
  await Promise.all(nodes.map(n => n.mesh.close()))
}

/** A part of `n` bytes that tells where it came from and which build it is. */
const part = (worker: number, build: number, n: number): Buffer => {
  const b = Buffer.alloc(n, 97 + ((worker * 7 + build) % 26))
  b.write(`<${worker}.${build}>`, 0, 'latin1')
  return b
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await sleep(10)
  assert.ok(ok(), what)
}

test('parts of many chunks reach every worker whole; the reply is cached until a part changes', async () => {
  const nodes = await workers(3, 64)
  try {
    const sizes = [5000, 0, 64 * 3]
    nodes.forEach((n, w) => (n.format.next = part(w, 1, sizes[w])))
    for (const n of nodes) n.scrape.build()
    const expected = nodes.map(n => n.format.next.toString('latin1')).join('|')
    for (const [w, n] of nodes.entries()) await until(`worker ${w} has every part`, () => n.scrape.reply().toString('latin1') === expected)
    // Cached: the same Buffer, no merge, until a part changes.
    const reply = nodes[1].scrape.reply()
    const merges = nodes[1].format.merges
    assert.equal(nodes[1].scrape.reply(), reply)
    assert.equal(nodes[1].format.merges, merges)
    // A new part from worker 0 replaces its old one everywhere.
    nodes[0].format.next = part(0, 2, 777)
    nodes[0].scrape.build()
    const next = [nodes[0].format.next, nodes[1].format.next, nodes[2].format.next].map(p => p.toString('latin1')).join('|')
    for (const [w, n] of nodes.entries()) await until(`worker ${w} has worker 0's new part`, () => n.scrape.reply().toString('latin1') === next)
    assert.notEqual(nodes[1].scrape.reply(), reply)
  } finally {
    await closeAll(nodes)
  }
})

test('parts built faster than they travel: each worker ends with the newest; a link is never filled past a chunk', async () => {
  // A request bound of two chunks: a part of 200 chunks must wait for room, never be refused.
  const nodes = await workers(2, 256, {requestBytes: 512})
  try {
    nodes[1].format.next = Buffer.from('one')
    nodes[1].scrape.build()
    for (let build = 1; build <= 5; build++) {
      nodes[0].format.next = part(0, build, 256 * 200)
      nodes[0].scrape.build()
      assert.ok(nodes[0].mesh.queued(1) < 2 * (256 + 20), `queued ${nodes[0].mesh.queued(1)}`)
    }
    const expected = `${nodes[0].format.next.toString('latin1')}|one`
    await until('the newest part arrived', () => nodes[1].scrape.reply().toString('latin1') === expected)
    assert.equal(nodes[0].scrape.reply().toString('latin1'), expected)
    assert.deepEqual(nodes[0].mesh.dropped, {requests: 0, answers: 0, tooLarge: 0})
  } finally {
    await closeAll(nodes)
  }
})

test('one worker: the reply is its own part, nothing is sent', () => {
  const format = new TestFormat()
  const scrape = new FullScrape({index: 0, count: 1}, format, 60_000)
  format.next = Buffer.from('mine')
  scrape.build()
  assert.equal(scrape.reply().toString(), 'mine')
  scrape.close()
})
