import { parseTime } from '../memory/memory-rules.ts';
import type { SearchFilter } from '../search/search-filter.ts';

/** The filter fields shared by the list route (query string) and search (body). */
export interface FilterFields {
  kind?: string | undefined;
  agentId?: string | undefined;
  sessionId?: string | undefined;
  pinned?: boolean | undefined;
  createdAfter?: string | undefined;
  createdBefore?: string | undefined;
  updatedAfter?: string | undefined;
  updatedBefore?: string | undefined;
}

const time = (text: string | undefined): number | undefined =>
  text === undefined ? undefined : parseTime(text);

/** Filter fields as the services take them (times in epoch ms), with the tags required. */
export function toFilter(f: FilterFields, tags: string[] | undefined): SearchFilter {
  return {
    kind: f.kind,
    tags,
    agentId: f.agentId,
    sessionId: f.sessionId,
    pinned: f.pinned,
    createdFrom: time(f.createdAfter),
    createdTo: time(f.createdBefore),
    updatedFrom: time(f.updatedAfter),
    updatedTo: time(f.updatedBefore),
  };
}
