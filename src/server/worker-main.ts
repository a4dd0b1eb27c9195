// Entry point of a worker process in a multi-worker tracker (forked by runtime.ts).
import {runWorkerProcess, type WorkerBoot} from './runtime.js'

const raw = process.env.TRACKER_WORKER_BOOT
if (!raw || !process.send) {
  process.stderr.write('worker-main is started by `tracker serve`, not by hand\n')
  process.exit(1)
}
await runWorkerProcess(JSON.parse(raw) as Required<WorkerBoot>)
