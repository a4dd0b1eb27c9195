/** Pid and status files: never written through a link, never taken from a live tracker. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {lstatSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {requestReload} from '../src/accesslist/client.js'
import {PidFileError, readStatus, statusPathFor} from '../src/process/status.js'
import {checkTracker, commandLineOf} from '../src/process/tracker-process.js'
import {startUdpTracker, tempDir} from './harness.js'

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function sleeper(): ChildProcess {
  const child = spawn('sleep', ['60'], {stdio: 'ignore'})
  child.unref()
  return child
}

/** A pid that was a process a moment ago and is not one any more. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {encoding: 'utf8'})
  return Number(r.stdout)
}

test("a link at pid_file: the tracker refuses to start and the link's target is untouched", async () => {
  const dir = tempDir()
  const victim = join(dir, 'victim')
  writeFileSync(victim, 'precious\n')
  const pidFile = join(dir, 'tracker.pid')
  for (const target of [victim, join(dir, 'not-there')]) {
    symlinkSync(target, pidFile)
    await assert.rejects(startUdpTracker({pid_file: pidFile}), (error: unknown) => {
      assert.ok(error instanceof PidFileError)
      assert.equal(error.message, `pid file ${pidFile} is a symbolic link; the tracker does not write through links: remove it or set a different pid_file`)
      return true
    })
    assert.equal(readlinkSync(pidFile), target, 'the link is left as it was')
    renameSync(pidFile, join(dir, `old-link-${target === victim ? 1 : 2}`))
  }
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n')
  assert.throws(() => statSync(join(dir, 'not-there')), /ENOENT/, 'nothing was created through the dangling link')
})

test('links at the status file and at its old predictable temporary name are replaced or left alone, never followed', async () => {
  const dir = tempDir()
  const pidFile = join(dir, 'tracker-udp.pid')
  const status = statusPathFor(pidFile)
  const [v1, v2] = [join(dir, 'victim1'), join(dir, 'victim2')]
  writeFileSync(v1, 'one\n')
  writeFileSync(v2, 'two\n')
  symlinkSync(v1, status)
  symlinkSync(v2, `${status}.${process.pid}.tmp`)
  symlinkSync(join(dir, 'made-through-link'), `${status}.${process.pid + 1}.tmp`)
  const t = await startUdpTracker({pid_file: pidFile})
  try {
    assert.ok(lstatSync(status).isFile(), 'the link at the status file was replaced by the file')
    assert.equal(readStatus(pidFile)!.pid, process.pid)
    assert.equal((await t.tracker.reloadAccessList()).generation, 2)
    assert.equal(readStatus(pidFile)!.generation, 2)
    assert.equal(readFileSync(v1, 'utf8'), 'one\n')
    assert.equal(readFileSync(v2, 'utf8'), 'two\n')
    assert.equal(readlinkSync(`${status}.${process.pid}.tmp`), v2)
    assert.throws(() => statSync(join(dir, 'made-through-link')), /ENOENT/)
    const ours = readdirSync(dir).filter(f => f.endsWith('.tmp') && !/\.\d+\.tmp$/.test(f))
    assert.deepEqual(ours, [], 'no temporary file is left behind')
    // Ours: created without following links, readable by all, written by us alone.
    assert.equal(statSync(pidFile).mode & 0o777, 0o644 & ~process.umask())
    assert.equal(statSync(status).mode & 0o777, 0o644 & ~process.umask())
  } finally {
    await t.stop()
  }
  assert.throws(() => lstatSync(pidFile), /ENOENT/)
  assert.throws(() => lstatSync(status), /ENOENT/)
  assert.equal(readlinkSync(`${status}.${process.pid}.tmp`), v2, 'the planted link is not ours to remove')
  assert.equal(readFileSync(v2, 'utf8'), 'two\n')
})

test('a second tracker with the same pid_file refuses to start, naming the first; the first keeps its files and reloads', async () => {
  const dir = tempDir()
  const pidFile = join(dir, 'tracker.pid')
  const a = await startUdpTracker({pid_file: pidFile})
  try {
    const pidBefore = lstatSync(pidFile)
    const statusBefore = readFileSync(statusPathFor(pidFile), 'utf8')
    await assert.rejects(startUdpTracker({pid_file: pidFile}), (error: unknown) => {
      assert.ok(error instanceof PidFileError)
      assert.equal(error.message, `another tracker (pid ${process.pid}) is running with pid file ${pidFile}: stop it or set a different pid_file`)
      return true
    })
    assert.equal(lstatSync(pidFile).ino, pidBefore.ino, "the pid file is the first tracker's, untouched")
    assert.equal(readFileSync(pidFile, 'utf8'), `${process.pid}\n`)
    assert.equal(readFileSync(statusPathFor(pidFile), 'utf8'), statusBefore)
    const status = await a.tracker.reloadAccessList()
    assert.deepEqual([status.ok, status.generation, readStatus(pidFile)!.generation], [true, 2, 2])
  } finally {
    await a.stop()
  }
  // Stopped, it let the name go: a tracker started again in this process gets it.
  const again = await startUdpTracker({pid_file: pidFile})
  assert.equal(readStatus(pidFile)!.generation, 1)
  await again.stop()
})

test('a stale pid file is taken over: its process is gone, or is not a tracker, or it holds no pid', async () => {
  const dir = tempDir()
  const pidFile = join(dir, 'tracker.pid')
  const sleep = sleeper()
  try {
    for (const content of [`${deadPid()}\n`, `${sleep.pid}\n`, 'not a pid\n', '', `${process.pid}\n`]) {
      writeFileSync(pidFile, content)
      const t = await startUdpTracker({pid_file: pidFile})
      assert.equal(readFileSync(pidFile, 'utf8'), `${process.pid}\n`, `took over a pid file holding ${JSON.stringify(content)}`)
      await t.stop()
      assert.throws(() => lstatSync(pidFile), /ENOENT/)
    }
    assert.ok(alive(sleep.pid!), 'the process it named was left alone')
  } finally {
    sleep.kill()
  }
})

test('on stop a tracker removes only files that are still its own', async () => {
  const dir = tempDir()
  const pidFile = join(dir, 'tracker.pid')
  const status = statusPathFor(pidFile)
  const t = await startUdpTracker({pid_file: pidFile})
  // Someone replaced both: a new file with the same text, and a link.
  writeFileSync(join(dir, 'other.pid'), `${process.pid}\n`)
  renameSync(join(dir, 'other.pid'), pidFile)
  writeFileSync(join(dir, 'victim'), 'precious\n')
  symlinkSync(join(dir, 'victim'), join(dir, 'link'))
  renameSync(join(dir, 'link'), status)
  await t.stop()
  assert.equal(readFileSync(pidFile, 'utf8'), `${process.pid}\n`, 'a pid file that is not the one it made stays')
  assert.ok(lstatSync(status).isSymbolicLink(), 'a link at the status file stays')
  assert.equal(readFileSync(join(dir, 'victim'), 'utf8'), 'precious\n')
})

test('reload requests are sent only to a tracker: not through a link, not to this process, not to a sleep with forged files', async () => {
  const dir = tempDir()
  const pidFile = join(dir, 'tracker.pid')
  const sleep = sleeper()
  try {
    writeFileSync(join(dir, 'real.pid'), `${sleep.pid}\n`)
    symlinkSync(join(dir, 'real.pid'), pidFile)
    let r = await requestReload(pidFile, 500)
    assert.equal(r.ok, false)
    assert.match(r.message, /pid file .*tracker\.pid is a symbolic link: refusing to signal/)

    renameSync(join(dir, 'real.pid'), pidFile)
    // Both files name the sleep, as someone who can write the directory could make them.
    writeFileSync(statusPathFor(pidFile), JSON.stringify({pid: sleep.pid, generation: 1}))
    r = await requestReload(pidFile, 500)
    assert.equal(r.ok, false)
    assert.match(
      r.message,
      new RegExp(`refusing to signal pid ${sleep.pid} \\(from .*\\): process ${sleep.pid} is not a tracker \\(its command line is \`sleep 60\`\\)`),
    )
    assert.ok(alive(sleep.pid!))

    writeFileSync(pidFile, `${process.pid}\n`)
    r = await requestReload(pidFile, 500)
    assert.match(r.message, /names this very process/)
  } finally {
    sleep.kill()
  }
})

test("a process's command line: /proc on Linux, ps elsewhere (both tried here)", () => {
  const sleep = sleeper()
  try {
    assert.deepEqual(commandLineOf(sleep.pid!, 'proc')?.args, ['sleep', '60'])
    assert.deepEqual(commandLineOf(sleep.pid!, 'ps')?.args, ['sleep', '60'])
    assert.equal(checkTracker(sleep.pid!).verdict, 'other')
    assert.equal(checkTracker(process.pid).verdict, 'other', 'a test runner is not a tracker')
    assert.equal(commandLineOf(deadPid(), 'proc'), undefined)
  } finally {
    sleep.kill()
  }
})
