import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Registry, TrafficStats, registerWorkerMetrics} from '../src/metrics/index.js'
import {Mesh, type MeshLimits} from '../src/server/mesh.js'
import type {WorkerContext} from '../src/server/runtime/worker-api.js'
import {FRAME} from '../src/server/frames.js'
import {ScrapeRouter, type ScrapeLimits} from '../src/server/scrape-router.js'
import type {ScrapeCounts} from '../src/swarm/index.js'
import {sample} from './harness.js'
import {nastyId} from './helpers.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

interface Node {
  mesh: Mesh
  router: ScrapeRouter
  registry: Registry
  /** Scrape-request frames this worker received. */
  requests: number
  /** When false the worker reads frames and answers none (a worker that never answers). */
  answering: boolean
}

/**
 * `count` workers in this process, linked by real meshes. Worker w counts hash h as
 * seeders = h[1], completed = w (who counted it), leechers = h[2].
 */
async function workers(count: number, scrapeLimits: Partial<ScrapeLimits> = {}, meshLimits: Partial<MeshLimits> = {}): Promise<Node[]> {
  const dir = mkdtempSync(join(tmpdir(), 'scrape-router-'))
  const nodes = Array.from({length: count}, (_, index): Node => {
    const mesh = new Mesh(index, count, dir, () => {}, meshLimits)
    const registry = new Registry()
    const ctx = {index, count, mesh, registry, ownerOf: (h: Uint8Array, o: number) => h[o] % count} as unknown as WorkerContext
    const swarm = {
      scrape(b: Uint8Array, o: number, out: ScrapeCounts) {
        out.seeders = b[o + 1]
        out.completed = index
        out.leechers = b[o + 2]
      },
    }
    const node: Node = {mesh, router: new ScrapeRouter(ctx, swarm, scrapeLimits), registry, requests: 0, answering: true}
    registerWorkerMetrics(registry, index, new TrafficStats([], [], [], []))
    mesh.onMessage((from, type, buf, offset, length) => {
      if (type === FRAME.scrapeRequest) node.requests++
      if (node.answering) node.router.onFrame(from, type, buf, offset, length)
    })
    return node
  })
  await Promise.all(nodes.map(n => n.mesh.listen()))
  await Promise.all(nodes.map(n => n.mesh.connect()))
  return nodes
}

const closeAll = (nodes: Node[]) => Promise.all(nodes.map(n => n.mesh.close()))

/** `n` hashes whose first byte is `first(i)` (the owner is first % workers). */
function hashes(n: number, first: (i: number) => number): Buffer {
  return Buffer.concat(
    Array.from({length: n}, (_, i) => {
      const h = nastyId()
      h[0] = first(i)
      return h
    }),
  )
}

function scrape(node: Node, buf: Buffer, count: number): {sync: boolean; result: Promise<Uint32Array | null>} {
  let sync = false
  const result = new Promise<Uint32Array | null>(resolve => {
    // A copy: the counts of an all-local scrape are the router's again after `done`.
    sync = node.router.scrape(buf, 0, count, counts => resolve(counts && Uint32Array.from(counts.subarray(0, 3 * count))))
  })
  return {sync, result}
}

test('a scrape across shards: each hash counted by its owner, one frame per other worker whatever the hash count', async () => {
  const nodes = await workers(3)
  try {
    const buf = hashes(1000, i => i)
    const {sync, result} = scrape(nodes[0], buf, 1000)
    assert.equal(sync, false)
    const counts = await result
    assert.ok(counts)
    for (let i = 0; i < 1000; i++) {
      const h = buf.subarray(20 * i, 20 * i + 20)
      assert.deepEqual([...counts.subarray(3 * i, 3 * i + 3)], [h[1], h[0] % 3, h[2]], `hash ${i}`)
    }
    assert.deepEqual(
      nodes.map(n => n.requests),
      [0, 1, 1],
    )
    assert.equal(nodes[0].router.waiting, 0)
    // Hashes on one other worker only: one frame, to it alone.
    const {result: r2} = scrape(
      nodes[0],
      hashes(200, () => 2),
      200,
    )
    assert.ok(await r2)
    assert.deepEqual(
      nodes.map(n => n.requests),
      [0, 1, 2],
    )
    // All local: answered before scrape() returns, and no frame at all.
    const {sync: local, result: r3} = scrape(
      nodes[0],
      hashes(70, i => 3 * i),
      70,
    )
    assert.equal(local, true)
    assert.ok((await r3)!.every((v, i) => i % 3 !== 1 || v === 0))
    assert.deepEqual(
      nodes.map(n => n.requests),
      [0, 1, 2],
    )
  } finally {
    await closeAll(nodes)
  }
})

test('a part that never comes back ends its scrape with null after the timeout, counted', async () => {
  const nodes = await workers(2, {timeoutMs: 600})
  try {
    nodes[1].answering = false
    const started = Date.now()
    const {sync, result} = scrape(
      nodes[0],
      hashes(70, i => i),
      70,
    )
    assert.equal(sync, false)
    assert.equal(nodes[0].router.waiting, 1)
    assert.equal(await result, null)
    assert.ok(Date.now() - started >= 400, 'not before its time')
    assert.equal(nodes[0].router.waiting, 0, 'the entry is gone')
    assert.equal(nodes[0].router.failed.timedOut, 1)
    const text = await nodes[0].registry.metrics()
    assert.equal(sample(text, 'tracker_refusals_total{reason="scrape_timeout",worker_index="0"}'), 1)
    // The worker answers again: the next scrape completes.
    nodes[1].answering = true
    assert.ok(
      await scrape(
        nodes[0],
        hashes(70, i => i),
        70,
      ).result,
    )
  } finally {
    await closeAll(nodes)
  }
})

test('scrapes waiting past the bound are refused at once (null, counted); the waiting ones still complete', async () => {
  const nodes = await workers(2, {maxPending: 3, maxPendingHashes: 1000})
  try {
    const waiting = [0, 1, 2].map(() =>
      scrape(
        nodes[0],
        hashes(10, i => i),
        10,
      ),
    )
    assert.ok(waiting.every(w => !w.sync))
    assert.equal(nodes[0].router.waiting, 3)
    const refused = scrape(
      nodes[0],
      hashes(10, i => i),
      10,
    )
    assert.equal(refused.sync, true)
    assert.equal(await refused.result, null)
    for (const w of waiting) assert.ok(await w.result)
    // The hash bound: 1000 hashes at most.
    const big = scrape(
      nodes[0],
      hashes(999, i => i),
      999,
    )
    const over = scrape(
      nodes[0],
      hashes(2, i => i),
      2,
    )
    assert.equal(await over.result, null)
    assert.ok(await big.result)
    assert.equal(nodes[0].router.failed.refused, 2)
    assert.equal(sample(await nodes[0].registry.metrics(), 'tracker_refusals_total{reason="busy",worker_index="0"}'), 2)
  } finally {
    await closeAll(nodes)
  }
})

test('a part that its link refuses ends the scrape with null at once, counted as a mesh drop', async () => {
  // A link takes one request frame per turn: the first part goes, the next in that turn cannot.
  const nodes = await workers(3, {}, {requestBytes: 1})
  try {
    const first = scrape(
      nodes[0],
      hashes(90, i => i),
      90,
    )
    const second = scrape(
      nodes[0],
      hashes(90, i => i),
      90,
    )
    assert.equal(first.sync, false)
    assert.equal(second.sync, true)
    assert.equal(await second.result, null)
    assert.ok(await first.result)
    assert.equal(nodes[0].router.waiting, 0)
    assert.equal(nodes[0].mesh.dropped.requests, 1, 'the second scrape stopped at its first refused part')
    assert.equal(nodes[0].router.failed.refused, 1)
    // A later turn: the links have room again.
    await sleep(20)
    assert.ok(
      await scrape(
        nodes[0],
        hashes(90, i => i),
        90,
      ).result,
    )
  } finally {
    await closeAll(nodes)
  }
})
