import { readFileSync } from 'node:fs';

/**
 * Resident set size of process `pid` in MiB, from /proc/<pid>/status (VmRSS); null where there
 * is no /proc (not Linux) or the process is gone.
 */
export function processRssMiB(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? null : Number(kb) / 1024;
  } catch {
    return null;
  }
}
