import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

import org.codelibs.elasticsearch.runner.ElasticsearchClusterRunner;
import org.elasticsearch.common.logging.LogConfigurator;

/**
 * Starts one Elasticsearch 7.10 node of the codelibs cluster runner, configured the way the
 * official image is: every environment variable with a lowercase, dotted name
 * (discovery.type, http.port, ...) is a node setting, and so is every -Ename=value argument.
 *
 * Written by the occ-book provisioning (provision/runner/); the local nodes and the Podman image
 * of the scripting build both run it. It takes http.port as given (the runner alone would cap it
 * at 9299 and silently move to the next free port) and drops xpack.* settings, which this build
 * has no module for.
 */
public final class OccRunner {
    private static final Pattern SETTING = Pattern.compile("[-a-z0-9_]+(\\.[-a-z0-9_]+)+");

    public static void main(String[] args) throws Exception {
        Map<String, String> settings = new TreeMap<>();
        System.getenv().forEach((k, v) -> {
            if (SETTING.matcher(k).matches() && !v.isEmpty()) settings.put(k, v);
        });
        String base = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-E") && i + 1 < args.length) put(settings, args[++i]);
            else if (a.startsWith("-E")) put(settings, a.substring(2));
            else if (a.equals("-basePath") && i + 1 < args.length) base = args[++i];
            else throw new IllegalArgumentException("unknown argument: " + a);
        }
        settings.keySet().removeIf(k -> {
            if (!k.startsWith("xpack.")) return false;
            System.err.println("occ-runner: ignoring setting [" + k + "]: no x-pack in this build");
            return true;
        });
        settings.putIfAbsent("cluster.name", "docker-cluster");
        settings.putIfAbsent("network.host", "127.0.0.1");
        settings.putIfAbsent("http.port", "9200");
        settings.putIfAbsent("node.name", System.getenv().getOrDefault("HOSTNAME", "node-1"));
        LogConfigurator.setNodeName(settings.get("node.name"));
        ElasticsearchClusterRunner runner = new ElasticsearchClusterRunner();
        runner.setMaxHttpPort(-1);
        runner.onBuild((index, builder) -> settings.forEach(builder::put));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try { runner.close(); } catch (Exception e) { System.err.println("occ-runner: close: " + e); }
        }));
        runner.build(ElasticsearchClusterRunner.newConfigs()
                .basePath(base).numOfNode(1).clusterName(settings.get("cluster.name")).useLogger());
        while (!runner.isClosed()) Thread.sleep(1000);
    }

    private static void put(Map<String, String> settings, String kv) {
        int eq = kv.indexOf("=");
        if (eq <= 0) throw new IllegalArgumentException("expected -Ename=value, got -E" + kv);
        settings.put(kv.substring(0, eq), kv.substring(eq + 1));
    }
}
