/**
 * Runs a task one at a time. A request during a run makes one more run after it, shared by every
 * request until it starts: so a reload always reads what was there when it was asked for, and the
 * list in force is always the last one read.
 */
export class OneAtATime<T> {
  private running: Promise<T> | undefined
  private queued: Promise<T> | undefined

  constructor(private readonly task: () => Promise<T>) {}

  request(): Promise<T> {
    if (this.queued) return this.queued
    if (!this.running) return this.run()
    const next = (): Promise<T> => {
      this.queued = undefined
      return this.run()
    }
    this.queued = this.running.then(next, next)
    return this.queued
  }

  private run(): Promise<T> {
    const attempt: Promise<T> = this.task().finally(() => {
      if (this.running === attempt) this.running = undefined
    })
    this.running = attempt
    return attempt
  }
}
