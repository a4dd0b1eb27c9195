/** Error texts a client can receive, the same in every protocol (aquatic's where it has one). */
export const MESSAGE = {
  portZero: "Port can't be 0",
  fullScrape: 'Full scrapes are not allowed',
  infoHashList: 'Invalid info hash list',
  infoHashNotAllowed: 'Info hash not allowed',
  torrentLimit: 'Tracker is at its torrent limit; try again later',
  busy: 'Tracker is busy; try again later',
} as const
