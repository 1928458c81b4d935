package dev.k2f.beam;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.apache.beam.vendor.grpc.v1p69p0.io.grpc.BindableService;
import org.apache.beam.vendor.grpc.v1p69p0.io.grpc.Server;
import org.apache.beam.vendor.grpc.v1p69p0.io.grpc.netty.NettyServerBuilder;

/** A gRPC server for Beam's services on a loopback address, never on every interface. */
final class LoopbackServer {
  static final String HOST = "127.0.0.1";

  private LoopbackServer() {}

  /** Starts {@code services} on host:port, refusing a host that is not a loopback address. */
  static Server start(String host, int port, BindableService... services) throws IOException {
    InetAddress address = InetAddress.getByName(host);
    if (!address.isLoopbackAddress()) {
      throw new IllegalArgumentException(host + " is not a loopback address");
    }
    // Beam's servers take messages of any size and allow 20 s keepalive pings; keep both.
    NettyServerBuilder builder =
        NettyServerBuilder.forAddress(new InetSocketAddress(address, port))
            .maxInboundMessageSize(Integer.MAX_VALUE)
            .permitKeepAliveTime(20, java.util.concurrent.TimeUnit.SECONDS);
    for (BindableService service : services) {
      builder.addService(service);
    }
    return builder.build().start();
  }
}
