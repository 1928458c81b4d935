package dev.k2f.beam;

import java.util.Arrays;
import org.apache.beam.runners.fnexecution.artifact.ArtifactRetrievalService;
import org.apache.beam.sdk.expansion.service.ExpansionService;
import org.apache.beam.sdk.expansion.service.ExpansionServiceOptions;
import org.apache.beam.sdk.options.PipelineOptions;
import org.apache.beam.sdk.options.PipelineOptionsFactory;
import org.apache.beam.vendor.grpc.v1p69p0.io.grpc.Server;

/**
 * Beam's expansion service (and, as in ExpansionService.main, its artifact retrieval service, which
 * serves files by path) on 127.0.0.1 only.
 *
 * <p>Arguments as ExpansionService.main: {@code PORT [--pipelineOption=value ...]}.
 */
public final class LoopbackExpansionService {
  private LoopbackExpansionService() {}

  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    PipelineOptionsFactory.register(ExpansionServiceOptions.class);
    PipelineOptions options =
        PipelineOptionsFactory.fromArgs(Arrays.copyOfRange(args, 1, args.length)).create();
    ExpansionService service = new ExpansionService(options, LoopbackServer.HOST + ":" + port);
    Server server =
        LoopbackServer.start(LoopbackServer.HOST, port, service, new ArtifactRetrievalService());
    // The service script's health check waits for this line.
    System.out.println("Starting expansion service at " + LoopbackServer.HOST + ":" + port);
    server.awaitTermination();
  }
}
