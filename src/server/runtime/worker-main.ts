// Entry point of a worker process in a multi-worker tracker (forked by cluster.ts).
import {BOOT_ENV, type WorkerBoot} from './ipc.js'
import {runWorkerProcess} from './worker-process.js'

const raw = process.env[BOOT_ENV]
if (!raw || !process.send) {
  process.stderr.write('worker-main is started by `tracker serve`, not by hand\n')
  process.exit(1)
}
await runWorkerProcess(JSON.parse(raw) as Required<WorkerBoot>)
