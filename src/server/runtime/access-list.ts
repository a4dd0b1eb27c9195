import {AccessList, AccessListError, buildSet, readAccessList} from '../../accesslist/index.js'
import type {Logger} from '../../util/log.js'
import type {RuntimeConfig} from './worker-api.js'
import type {Workers} from './workers.js'

/**
 * The primary's side of the access list: reads the file, puts the list in force in every worker
 * and keeps what the metrics report (entries in force, the generation, reload counts).
 */
export class PrimaryAccessList {
  /** The list the primary holds: its mode and generation, and its set when the worker runs in this process. */
  readonly list: AccessList
  /** The list in force: its entries (duplicates counted once) and the attempt that made it so. */
  readonly inForce = {entries: 0, generation: 1}
  readonly reloads = {ok: 0, error: 0}

  constructor(
    private readonly config: RuntimeConfig['access_list'],
    private readonly log: Logger,
  ) {
    this.list = new AccessList(config.mode)
    this.list.generation = 1
  }

  /** The file's keys at start, none when the mode is off. A bad list refuses to start (AccessListError carries file and line). */
  async readInitial(): Promise<Buffer | undefined> {
    return this.list.mode === 'off' ? undefined : readAccessList(this.config.path)
  }

  /**
   * Puts a list in force without holding up replies for long: the set is built in slices and
   * swapped in one step (see Workers.putInForce for how it reaches the workers).
   */
  async putInForce(keys: Buffer, generation: number, workers: Workers[]): Promise<void> {
    const set = await buildSet(keys)
    // Every protocol of the tracker gets the same set (`serve all` has one list for all).
    await Promise.all(workers.map(w => w.putInForce(set, generation)))
    this.inForce.entries = set.size
  }

  /** Re-reads the file for reload `generation`; on failure the previous list stays in force. Returns the error, or null. */
  async reload(generation: number, workers: Workers[]): Promise<string | null> {
    if (this.list.mode === 'off') {
      this.reloads.ok++
      return null
    }
    try {
      await this.putInForce(await readAccessList(this.config.path), generation, workers)
      this.reloads.ok++
      this.log.info(`access list reloaded: ${this.inForce.entries} entries (generation ${generation})`)
      return null
    } catch (e) {
      const error = e instanceof AccessListError ? e.message : String(e)
      this.reloads.error++
      this.log.error(`access list reload failed, the previous list stays in force: ${error}`)
      return error
    }
  }

  /** The reload attempt `generation` is over, whatever its outcome. */
  setGeneration(generation: number): void {
    this.list.generation = this.inForce.generation = generation
  }
}
