/** Switch to an unprivileged user and group once every socket is bound (Node has no chroot). */
export function dropPrivileges(user: string, group: string): void {
  if (typeof process.setgid !== 'function' || typeof process.setuid !== 'function') {
    throw new Error('dropping privileges is not supported on this platform')
  }
  try {
    if (typeof process.setgroups === 'function') process.setgroups([group])
    process.setgid(group)
  } catch (error) {
    throw new Error(`could not switch to group "${group}" ([privileges] group): ${(error as Error).message}`)
  }
  try {
    process.setuid(user)
  } catch (error) {
    throw new Error(`could not switch to user "${user}" ([privileges] user): ${(error as Error).message}`)
  }
}
