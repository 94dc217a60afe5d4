import { PasswordJobs } from './src/auth/password-jobs';
const jobs = new PasswordJobs({ threads: 1, queueMax: 32, queueWaitMs: 500 });
(async () => {
  await jobs.hash('warm-up-password', 4);
  const before = process.cpuUsage(); const t0 = performance.now();
  let running = true; let done = 0, refused = 0;
  const loop = async () => { while (running) { try { await jobs.compare('wrong-password', '$2b$10$abcdefghijklmnopqrstuu5Ti2AovoA2nTzK0X1PD6D8b8kgWLK16'); done++; } catch { refused++; } } };
  const loops = Array.from({ length: 64 }, loop);
  await new Promise((r) => setTimeout(r, 4000)); running = false; await Promise.all(loops);
  const cpu = process.cpuUsage(before); const wall = performance.now() - t0;
  console.log({ done, refused, wallMs: Math.round(wall), processCpuMs: Math.round((cpu.user + cpu.system) / 1000) });
  await jobs.close();
})();
