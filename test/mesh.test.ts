import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Mesh} from '../src/server/mesh.js'

test('mesh delivers frames between workers in order, batched per tick', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-'))
  const meshes = [0, 1, 2].map(i => new Mesh(i, 3, dir, reason => assert.fail(reason)))
  const got: string[][] = [[], [], []]
  meshes.forEach((m, i) => m.onMessage((from, type, buf, off, len) => {
    got[i].push(`${from}:${type}:${buf.subarray(off, off + len).toString('latin1')}`)
  }))
  await Promise.all(meshes.map(m => m.listen()))
  await Promise.all(meshes.map(m => m.connect()))
  const big = Buffer.alloc(200_000, 0x80)
  for (let n = 0; n < 100; n++) meshes[0].send(1, 7, Buffer.from(`m${n}`))
  meshes[2].send(1, 9, big)
  meshes[1].send(0, 1, Buffer.alloc(0))
  await new Promise(r => setTimeout(r, 200))
  assert.equal(got[1].filter(s => s.startsWith('0:7:')).length, 100)
  assert.deepEqual(got[1].filter(s => s.startsWith('0:7:')).slice(0, 3), ['0:7:m0', '0:7:m1', '0:7:m2'])
  const fromTwo = got[1].filter(s => s.startsWith('2:9:'))
  assert.equal(fromTwo.length, 1)
  assert.equal(fromTwo[0].length, 4 + 200_000)
  assert.deepEqual(got[0], ['1:1:'])
  await Promise.all(meshes.map(m => m.close()))
})
