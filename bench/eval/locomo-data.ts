import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One dialog turn, as it becomes one memory. */
export interface Turn {
  /** LoCoMo's turn id, e.g. "D3:12". */
  diaId: string;
  sessionId: string;
  speaker: string;
  /** The memory text: speaker, words, and the caption of a shared photo. */
  content: string;
  /** The session's date plus a second per turn (turns keep their order). */
  createdAt: number;
}

/** One retrieval question. */
export interface Question {
  question: string;
  /** 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop. */
  category: number;
  /** Turn ids holding the answer. */
  evidence: string[];
}

/** One conversation: its turns and its questions. */
export interface Conversation {
  name: string;
  turns: Turn[];
  questions: Question[];
}

const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];

/** Parses LoCoMo's "1:56 pm on 8 May, 2023" (UTC). */
export function parseSessionDate(text: string): number {
  const m = /^(\d{1,2}):(\d{2})\s*(am|pm) on (\d{1,2}) ([A-Za-z]+),? (\d{4})$/i.exec(text.trim());
  const month = m ? MONTHS.indexOf((m[5] as string).toLowerCase()) : -1;
  if (!m || month < 0) throw new Error(`unrecognized session date: ${text}`);
  const hour = (Number(m[1]) % 12) + ((m[3] as string).toLowerCase() === 'pm' ? 12 : 0);
  return Date.UTC(Number(m[6]), month, Number(m[4]), hour, Number(m[2]));
}

interface RawTurn {
  speaker: string;
  dia_id: string;
  text: string;
  blip_caption?: string;
}

interface RawQa {
  question: string;
  category: number;
  evidence?: string[];
}

/** Categories scored for retrieval (5, adversarial, has no answer in the conversation). */
export const SCORED_CATEGORIES = [1, 2, 3, 4];

/** Loads every conversation file of the data set directory (read at run time, never copied). */
export async function loadLocomo(dir: string): Promise<Conversation[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const conversations: Conversation[] = [];
  for (const file of files) {
    const raw = JSON.parse(await readFile(join(dir, file), 'utf8')) as Record<string, unknown>;
    const turns: Turn[] = [];
    for (let n = 1; Array.isArray(raw[`session_${n}`]) || raw[`session_${n}_date_time`]; n++) {
      const list = raw[`session_${n}`];
      if (!Array.isArray(list) || list.length === 0) continue;
      const date = parseSessionDate(String(raw[`session_${n}_date_time`]));
      (list as RawTurn[]).forEach((t, i) => {
        const caption = t.blip_caption ? ` [shares a photo: ${t.blip_caption}]` : '';
        turns.push({
          diaId: t.dia_id,
          sessionId: `session-${n}`,
          speaker: t.speaker,
          content: `${t.speaker}: ${t.text}${caption}`,
          createdAt: date + i * 1000,
        });
      });
    }
    const known = new Set(turns.map((t) => t.diaId));
    const questions = ((raw.qa ?? []) as RawQa[])
      .filter((q) => SCORED_CATEGORIES.includes(q.category))
      .map((q) => ({
        question: String(q.question),
        category: q.category,
        // Some evidence ids are written "D8:6; D9:17" or name no turn: keep the turns that exist.
        evidence: (q.evidence ?? [])
          .flatMap((e) => String(e).split(/[;,]\s*/))
          .map((e) => e.trim())
          .filter((e) => known.has(e)),
      }))
      .filter((q) => q.evidence.length > 0);
    conversations.push({ name: file.replace(/\.json$/, ''), turns, questions });
  }
  return conversations;
}
