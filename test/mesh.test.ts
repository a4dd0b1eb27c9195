import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync} from 'node:fs'
import {createConnection, createServer, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Worker} from 'node:worker_threads'
import {FrameReader, MESH_LIMITS, Mesh, meshSocketPath} from '../src/server/mesh.js'

const tick = (): Promise<void> => new Promise(resolve => setImmediate(resolve))
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

test('mesh delivers frames between workers in order, batched per tick', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-'))
  const meshes = [0, 1, 2].map(i => new Mesh(i, 3, dir, reason => assert.fail(reason)))
  const got: string[][] = [[], [], []]
  meshes.forEach((m, i) =>
    m.onMessage((from, type, buf, off, len) => {
      got[i].push(`${from}:${type}:${buf.subarray(off, off + len).toString('latin1')}`)
    }),
  )
  await Promise.all(meshes.map(m => m.listen()))
  await Promise.all(meshes.map(m => m.connect()))
  const big = Buffer.alloc(200_000, 0x80)
  for (let n = 0; n < 100; n++) assert.ok(meshes[0].send(1, 7, Buffer.from(`m${n}`)))
  assert.ok(meshes[2].send(1, 9, big))
  assert.ok(meshes[1].send(0, 1, Buffer.alloc(0)))
  await sleep(200)
  assert.equal(got[1].filter(s => s.startsWith('0:7:')).length, 100)
  assert.deepEqual(got[1].filter(s => s.startsWith('0:7:')).slice(0, 3), ['0:7:m0', '0:7:m1', '0:7:m2'])
  const fromTwo = got[1].filter(s => s.startsWith('2:9:'))
  assert.equal(fromTwo.length, 1)
  assert.equal(fromTwo[0].length, 4 + 200_000)
  assert.deepEqual(got[0], ['1:1:'])
  await Promise.all(meshes.map(m => m.close()))
})

/** Frames `[u32 length][u8 type][payload]` in `bytes`, after the sender's index byte. */
function framesOf(bytes: Buffer): {type: number; payload: Buffer}[] {
  const out: {type: number; payload: Buffer}[] = []
  for (let pos = 1; pos < bytes.length; ) {
    const length = bytes.readUInt32LE(pos)
    out.push({type: bytes[pos + 4], payload: bytes.subarray(pos + 5, pos + 5 + length)})
    pos += 5 + length
  }
  return out
}

test('a link whose receiver stops reading: the queue stays within its bound, drops are counted, answers still go and go first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-'))
  // Worker 1 is a bare socket that accepts the link and reads nothing until told to.
  let peer!: Socket
  const server = createServer()
  const accepted = new Promise<void>(resolve =>
    server.on('connection', socket => {
      socket.pause()
      peer = socket
      resolve()
    }),
  )
  await new Promise<void>(resolve => server.listen(meshSocketPath(dir, 1), resolve))
  const limits = {requestBytes: 256 << 10, answerBytes: 1 << 20}
  const mesh = new Mesh(0, 2, dir, reason => assert.fail(reason), limits)
  await mesh.connect()
  await accepted
  const frame = Buffer.alloc(1024)
  const REQUEST = 7
  const ANSWER = 8
  let requests = 0
  let sent = 0
  let maxQueued = 0
  // 8 MiB of requests over 64 turns: far more than the bound and the kernel's socket buffers.
  for (let turn = 0; turn < 64; turn++) {
    for (let k = 0; k < 128; k++) {
      frame.writeUInt32LE(sent++, 0)
      if (mesh.send(1, REQUEST, frame)) requests++
      maxQueued = Math.max(maxQueued, mesh.queued(1))
    }
    await tick()
  }
  assert.ok(maxQueued <= limits.requestBytes + 5 + frame.length, `queued ${maxQueued} bytes, bound ${limits.requestBytes}`)
  assert.ok(mesh.queued(1) >= limits.requestBytes, 'the link is full')
  assert.equal(mesh.dropped.requests, sent - requests, 'every refused request is counted')
  assert.ok(mesh.dropped.requests > 0)
  assert.equal(mesh.drops().mesh_queue_full, mesh.dropped.requests)
  // Answers still go while requests are refused, up to their own bound.
  let answers = 0
  for (let k = 0; k < 2048; k++) {
    frame.writeUInt32LE(k, 0)
    if (mesh.answer(1, ANSWER, frame)) answers++
    else break
    assert.equal(mesh.send(1, REQUEST, frame), false, 'requests stay refused')
  }
  assert.ok(answers > 0 && answers < 2048, `answers accepted: ${answers}`)
  assert.equal(mesh.dropped.answers, 1)
  assert.ok(mesh.queued(1) <= limits.answerBytes + 5 + frame.length)
  // The receiver reads again: everything accepted arrives, answers ahead of the requests that
  // were still waiting in the outbox.
  const chunks: Buffer[] = []
  peer.on('data', c => chunks.push(c))
  peer.resume()
  const expected = 1 + (requests + answers) * (5 + frame.length)
  for (let i = 0; i < 200 && chunks.reduce((n, c) => n + c.length, 0) < expected; i++) await sleep(20)
  const frames = framesOf(Buffer.concat(chunks))
  assert.equal(frames.filter(f => f.type === REQUEST).length, requests)
  assert.equal(frames.filter(f => f.type === ANSWER).length, answers)
  // Every request was queued before the first answer; those still in the outbox come after them.
  const firstAnswerAt = frames.findIndex(f => f.type === ANSWER)
  const lastAnswerAt = frames.findLastIndex(f => f.type === ANSWER)
  assert.ok(
    frames.slice(firstAnswerAt, lastAnswerAt + 1).every(f => f.type === ANSWER),
    'answers leave together',
  )
  const after = frames.slice(lastAnswerAt + 1)
  assert.ok(after.length > 0 && after.every(f => f.type === REQUEST), `${after.length} requests queued before the answers came after them`)
  const order = frames.filter(f => f.type === REQUEST).map(f => f.payload.readUInt32LE(0))
  assert.deepEqual(
    order,
    [...order].sort((a, b) => a - b),
    'requests keep their order',
  )
  await mesh.close()
  peer.destroy()
  server.close()
})

test('a frame longer than the largest any worker sends breaks the link; nothing is allocated for it', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-'))
  const broken: string[] = []
  const mesh = new Mesh(1, 2, dir, reason => broken.push(reason))
  await mesh.listen()
  t.after(() => mesh.close())
  mesh.limitFrames(1 << 20)
  let frames = 0
  mesh.onMessage(() => frames++)
  const rss = process.memoryUsage().rss
  const socket = createConnection(meshSocketPath(dir, 1))
  await new Promise(resolve => socket.once('connect', resolve))
  const head = Buffer.alloc(6)
  head[0] = 0
  head.writeUInt32LE(0xffff_fff0, 1)
  head[5] = 7
  socket.write(head)
  socket.on('error', () => {})
  await sleep(100)
  assert.equal(frames, 0)
  assert.match(broken[0] ?? '', /worker 0 sent a frame of 4294967280 bytes, more than the largest any worker sends \(1048576\)/)
  assert.ok(process.memoryUsage().rss - rss < 256 << 20)
  // A link that says it comes from this worker itself (or from no worker) is broken too.
  const self = createConnection(meshSocketPath(dir, 1))
  self.on('error', () => {})
  await new Promise(resolve => self.once('connect', resolve))
  self.write(Buffer.from([1]))
  await sleep(100)
  assert.ok(
    broken.some(b => /a link says it comes from worker 1, which is not one of the other 1/.test(b)),
    broken.join('; '),
  )
  socket.destroy()
  self.destroy()
  await mesh.close()
})

test('frames split anywhere across reads are put back together', () => {
  const payloads = [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(4, 1), Buffer.alloc(5, 2), Buffer.alloc(70_000, 3), Buffer.from('end')]
  const stream = Buffer.concat([
    Buffer.from([3]),
    ...payloads.flatMap((p, i) => {
      const head = Buffer.alloc(5)
      head.writeUInt32LE(p.length, 0)
      head[4] = 10 + i
      return [head, p]
    }),
  ])
  const check = (cuts: number[]) => {
    const got: {from: number; type: number; payload: Buffer}[] = []
    const reader = new FrameReader(MESH_LIMITS, (from, type, buf, off, len) => got.push({from, type, payload: Buffer.from(buf.subarray(off, off + len))}))
    let at = 0
    for (const cut of [...cuts, stream.length]) {
      assert.equal(reader.push(stream.subarray(at, cut)), -1)
      at = cut
    }
    assert.deepEqual(
      got.map(g => g.type),
      payloads.map((_, i) => 10 + i),
      `cuts ${cuts}`,
    )
    got.forEach((g, i) => {
      assert.equal(g.from, 3)
      assert.ok(g.payload.equals(payloads[i]), `frame ${i}, cuts ${cuts}`)
    })
  }
  check([])
  // Every single cut in the small frames, and cuts inside the large one.
  for (let cut = 1; cut < 40; cut++) check([cut])
  for (let cut = 1; cut < stream.length; cut += 997) check([cut, Math.min(stream.length, cut + 3)])
  check(Array.from({length: stream.length - 1}, (_, i) => i + 1).filter(i => i < 40 || i % 4096 === 0))
})

test('one link is read for at most its budget (plus what was already read) before the worker gets a turn', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-'))
  const readBudget = 64 << 10
  // The sender's link closes at the end: that is all this mesh may report.
  const broken: string[] = []
  const mesh = new Mesh(1, 2, dir, reason => broken.push(reason), {readBudget})
  await mesh.listen()
  let turn = 0
  let maxTurn = 0
  let total = 0
  mesh.onMessage((_from, _type, _buf, _off, len) => {
    if (turn === 0)
      setImmediate(() => {
        maxTurn = Math.max(maxTurn, turn)
        turn = 0
      })
    turn += 5 + len
    total += 5 + len
  })
  // The sender writes from another thread while this one reads: without a budget one readable
  // event reads up to 32 x 64 KiB.
  const sender = new Worker(
    `
    const {createConnection} = require('node:net')
    const {workerData} = require('node:worker_threads')
    const socket = createConnection(workerData.path, () => {
      socket.write(Buffer.from([0]))
      const frame = Buffer.alloc(1029)
      frame.writeUInt32LE(1024, 0)
      frame[4] = 7
      const batch = Buffer.concat(Array.from({length: 256}, () => frame))
      const end = Date.now() + 1000
      const pump = () => {
        while (Date.now() < end) if (!socket.write(batch)) return socket.once('drain', pump)
        socket.end()
      }
      pump()
    })
    socket.on('error', () => {})
  `,
    {eval: true, workerData: {path: meshSocketPath(dir, 1)}},
  )
  await new Promise(resolve => sender.once('exit', resolve))
  await sleep(300)
  assert.deepEqual(broken, ['link from worker 0 closed'])
  assert.ok(total > 4 * readBudget, `read ${total} bytes`)
  // The chunk that crosses the budget and the one the stream had already read ahead.
  assert.ok(maxTurn <= readBudget + 2 * (64 << 10), `${maxTurn} bytes handled in one turn`)
  await mesh.close()
})
