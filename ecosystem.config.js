// pm2 process file: `pm2 start ecosystem.config.js`.
// One pm2 app, the supervisor, in fork mode; it forks its own routine processes and hands them fds, which pm2
// cannot do (platform-notes §4). treekill is off so that on stop only the supervisor gets the signal and shuts
// its routines down in order (close tunnels, stop routines, remove the device) instead of pm2 killing them first.
// Reload a config with `pm2 sendSignal SIGHUP nebula-ts` or `nebula-ctl reload`, not `pm2 reload` (that restarts
// the process and so recreates the tun device).
const path = require('node:path');

module.exports = {
  apps: [
    {
      name: process.env.NEBULA_TS_APP || 'nebula-ts',
      script: path.join(__dirname, 'dist', 'supervisor', 'main.js'),
      args: ['-config', process.env.NEBULA_TS_CONFIG || '/etc/nebula/config.yml'],
      exec_mode: 'fork',
      instances: 1,
      autorestart: true,
      // The supervisor sends 'ready' once every routine is serving.
      wait_ready: true,
      listen_timeout: 15000,
      // Time for closeTunnel messages and an orderly routine shutdown before pm2 escalates to SIGKILL.
      kill_timeout: 8000,
      treekill: false,
    },
  ],
};
