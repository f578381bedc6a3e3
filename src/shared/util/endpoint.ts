/** An IPv4 underlay address (uint32 IP, port), as the supervisor passes them around, and its log form. */
import { formatIPv4 } from './ipv4';

export interface Endpoint {
  ip: number;
  port: number;
}

/** "a.b.c.d:port", as Nebula logs udpAddr. */
export function formatEndpoint(e: Endpoint): string {
  return `${formatIPv4(e.ip)}:${e.port}`;
}
