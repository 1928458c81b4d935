package dev.k2f.beam;

import java.net.URI;
import org.apache.beam.fn.harness.ExternalWorkerService;
import org.apache.beam.sdk.options.PipelineOptions;
import org.apache.beam.sdk.options.PortablePipelineOptions;
import org.apache.beam.sdk.util.construction.Environments;
import org.apache.beam.sdk.util.construction.PipelineOptionsTranslation;
import org.apache.beam.vendor.grpc.v1p69p0.io.grpc.Server;

/**
 * Beam's Java SDK harness worker pool (ExternalWorkerService: one harness thread per worker) on the
 * loopback address its options name.
 *
 * <p>Configured as ExternalWorkerService.main: the PIPELINE_OPTIONS environment variable (JSON), whose
 * defaultEnvironmentConfig is the address to listen on, e.g. 127.0.0.1:50001.
 */
public final class LoopbackWorkerPool {
  private LoopbackWorkerPool() {}

  public static void main(String[] args) throws Exception {
    String json = System.getenv("PIPELINE_OPTIONS");
    if (json == null) {
      throw new IllegalArgumentException("set PIPELINE_OPTIONS (JSON) as for ExternalWorkerService");
    }
    PipelineOptions options = PipelineOptionsTranslation.fromJson(json);
    String address =
        Environments.getExternalServiceAddress(options.as(PortablePipelineOptions.class));
    URI uri = URI.create("grpc://" + address);
    Server server = LoopbackServer.start(uri.getHost(), uri.getPort(), new ExternalWorkerService(options));
    // The service script's health check waits for this line.
    System.out.println("External worker service started at address: " + address);
    server.awaitTermination();
  }
}
