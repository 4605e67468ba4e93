/**
 * A child process running the whole service on a given SQLite file, for the SIGKILL test: started with
 * `node --import tsx`, it prints one JSON line with its ports when it is up, then runs until killed.
 */
import { loadConfig } from '../../dispatcher/config.ts';
import { GuardianService } from '../../dispatcher/service.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { silentLogger } from '../../kernel/log.ts';
import { AnchoredClock } from './dispatch-helpers.ts';

const env = process.env;
const clock = new AnchoredClock(Number(env.SIM_START), Number(env.REAL_START), Number(env.SPEED));
const store = new SqliteStore(env.DB_FILE!);
const service = new GuardianService({
  config: loadConfig({
    MQTT_PORT: env.MQTT_PORT ?? '0',
    HTTP_PORT: '0',
    MQTT_HOST: '127.0.0.1',
    HTTP_HOST: '127.0.0.1',
    DATA_DIR: env.DATA_DIR,
    ADMIN_PASSWORD: 'admin-password-365',
    LOG_LEVEL: 'silent',
  }),
  clock,
  log: silentLogger(),
  store,
});
await service.start();
process.stdout.write(`${JSON.stringify({ mqtt: service.mqttPort, http: service.httpPort })}\n`);
