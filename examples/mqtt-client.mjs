// An MQTT client over spinet sockets with the `mqtt` package unchanged: its stream is a spinet
// TCP connection. Subscribes, publishes a reading, prints what the broker sends back.
import mqtt from 'mqtt';
import { openBoard } from 'spinet';

const [host = 'gateway.lan', port = '1883'] = process.argv.slice(2);
const node = await openBoard();
const client = new mqtt.MqttClient(() => node.net.connect(Number(port), host), { clientId: 'spinet-example', reconnectPeriod: 0 });
client.on('error', async (error) => {
  console.error(`MQTT: ${error.code ?? ''} ${error.message}`);
  process.exitCode = 1;
  client.end(true);
  await node.close();
});
client.on('connect', async () => {
  console.log(`connected to ${host}:${port}`);
  await client.subscribeAsync('spinet/#');
  await client.publishAsync('spinet/temperature', '21.5');
});
client.on('message', async (topic, payload) => {
  console.log(`${topic}: ${payload}`);
  await client.endAsync();
  await node.close();
});
