/**
 * Child process for the exactly-once test: runs the rules pipeline over the event log of a SQLite file
 * and reports each commit's cursor on stdout ("committed <seq>"), then "done". The parent kills it with
 * SIGKILL mid-stream.
 */
import { Directory } from '../../dispatcher/directory.ts';
import { RulesPipeline } from '../../dispatcher/rules/pipeline.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { instant } from '../../kernel/time.ts';

const [file, start] = process.argv.slice(2);
const store = new SqliteStore(file!);
await store.migrate();
const directory = new Directory({
  store,
  zone: 'Asia/Shanghai',
  shifts: { dayStart: '08:00', nightStart: '20:00' },
});
const pipeline: RulesPipeline = new RulesPipeline({
  store,
  directory,
  clock: new ManualClock(instant(Number(start))),
  log: silentLogger(),
  onCommitted: () => process.stdout.write(`committed ${pipeline.position}\n`),
});
await pipeline.start();
process.stdout.write('done\n');
await pipeline.stop();
await store.close();
