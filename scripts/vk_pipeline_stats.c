/*
 * vk_pipeline_stats: what a Vulkan driver's shader compiler made of ketasim's kernels.
 *
 * For each kernel written by `ketasim shaders --out DIR` (NAME.spv, the strict SPIR-V
 * the simulator hands the driver, and NAME.layout, its descriptor types in binding
 * order), it builds the compute pipeline on a Vulkan device with
 * VK_KHR_pipeline_executable_properties and prints every statistic the driver
 * reports (registers, spills, scratch, occupancy, instruction counts: which ones is
 * the driver's choice), one tab-separated line each:
 *
 *     kernel <TAB> executable <TAB> statistic <TAB> value
 *
 * No buffer is allocated and nothing is dispatched, so it also runs on a driver's
 * offline "null" device (Mesa RADV with RADV_FORCE_FAMILY: scripts/shader-stats.sh).
 *
 * Usage: vk_pipeline_stats [-d NAME_SUBSTRING] DIR/KERNEL.spv ...
 * Build: gcc -O2 -o vk_pipeline_stats vk_pipeline_stats.c -lvulkan
 */
#include <vulkan/vulkan.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BINDINGS 64
#define MAX_STATS 64

static int fail(const char *what, VkResult r) {
    fprintf(stderr, "vk_pipeline_stats: %s failed (VkResult %d)\n", what, (int)r);
    return 1;
}

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* NAME.layout: one word per descriptor, in binding order: "uniform" or "storage". */
static int read_layout(const char *spv_path, VkDescriptorType *types, uint32_t *count) {
    char path[4096];
    size_t n = strlen(spv_path);
    if (n < 4 || n + 4 >= sizeof path || strcmp(spv_path + n - 4, ".spv") != 0) return -1;
    memcpy(path, spv_path, n - 4);
    strcpy(path + n - 4, ".layout");
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char word[32];
    *count = 0;
    while (fscanf(f, "%31s", word) == 1) {
        if (*count == MAX_BINDINGS) break;
        if (strcmp(word, "uniform") == 0) {
            types[(*count)++] = VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER;
        } else if (strcmp(word, "storage") == 0) {
            types[(*count)++] = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        } else {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static const char *kernel_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int main(int argc, char **argv) {
    const char *want = NULL;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-d") == 0) {
        want = argv[2];
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: vk_pipeline_stats [-d NAME_SUBSTRING] DIR/KERNEL.spv ...\n");
        return 2;
    }
    VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO, NULL, "vk_pipeline_stats", 1,
                             "ketasim", 1, VK_API_VERSION_1_1};
    VkInstanceCreateInfo ici = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, NULL, 0, &app, 0, NULL,
                                0, NULL};
    VkInstance inst;
    VkResult r = vkCreateInstance(&ici, NULL, &inst);
    if (r != VK_SUCCESS) return fail("vkCreateInstance", r);
    uint32_t n_dev = 16;
    VkPhysicalDevice devs[16];
    vkEnumeratePhysicalDevices(inst, &n_dev, devs);
    VkPhysicalDevice pd = VK_NULL_HANDLE;
    VkPhysicalDeviceProperties props;
    for (uint32_t i = 0; i < n_dev && pd == VK_NULL_HANDLE; i++) {
        vkGetPhysicalDeviceProperties(devs[i], &props);
        if (want ? strstr(props.deviceName, want) != NULL
                 : props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU) {
            pd = devs[i];
        }
    }
    if (pd == VK_NULL_HANDLE) {
        fprintf(stderr, "vk_pipeline_stats: no Vulkan device %s%s%s\n",
                want ? "named like \"" : "other than a CPU", want ? want : "",
                want ? "\"" : "");
        return 1;
    }
    fprintf(stderr, "device: %s (driver version 0x%x)\n", props.deviceName, props.driverVersion);

    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pep = {
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR, NULL,
        VK_TRUE};
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, NULL, 0, 0, 1,
                                   &prio};
    const char *ext = VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME;
    VkDeviceCreateInfo dci = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, &pep, 0, 1, &qci, 0, NULL,
                              1, &ext, NULL};
    VkDevice dev;
    r = vkCreateDevice(pd, &dci, NULL, &dev);
    if (r == VK_ERROR_EXTENSION_NOT_PRESENT) {
        fprintf(stderr, "vk_pipeline_stats: %s has no VK_KHR_pipeline_executable_properties\n",
                props.deviceName);
        return 1;
    }
    if (r != VK_SUCCESS) return fail("vkCreateDevice with VK_KHR_pipeline_executable_properties", r);
    PFN_vkGetPipelineExecutablePropertiesKHR get_execs =
        (PFN_vkGetPipelineExecutablePropertiesKHR)vkGetDeviceProcAddr(
            dev, "vkGetPipelineExecutablePropertiesKHR");
    PFN_vkGetPipelineExecutableStatisticsKHR get_stats =
        (PFN_vkGetPipelineExecutableStatisticsKHR)vkGetDeviceProcAddr(
            dev, "vkGetPipelineExecutableStatisticsKHR");
    if (!get_execs || !get_stats) {
        fprintf(stderr, "vk_pipeline_stats: the driver lacks VK_KHR_pipeline_executable_properties\n");
        return 1;
    }

    int status = 0;
    for (int a = first; a < argc; a++) {
        const char *name = kernel_name(argv[a]);
        size_t len;
        uint32_t *code = read_file(argv[a], &len);
        VkDescriptorType types[MAX_BINDINGS];
        uint32_t n_bind;
        if (!code || len % 4 != 0 || read_layout(argv[a], types, &n_bind) != 0) {
            fprintf(stderr, "vk_pipeline_stats: cannot read %s and its .layout\n", argv[a]);
            status = 1;
            free(code);
            continue;
        }
        VkDescriptorSetLayoutBinding binds[MAX_BINDINGS];
        for (uint32_t b = 0; b < n_bind; b++) {
            binds[b] = (VkDescriptorSetLayoutBinding){b, types[b], 1, VK_SHADER_STAGE_COMPUTE_BIT,
                                                      NULL};
        }
        VkDescriptorSetLayoutCreateInfo slci = {
            VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, NULL, 0, n_bind, binds};
        VkDescriptorSetLayout set_layout;
        VkPipelineLayout layout;
        VkShaderModule module;
        VkPipeline pipe;
        r = vkCreateDescriptorSetLayout(dev, &slci, NULL, &set_layout);
        if (r != VK_SUCCESS) return fail("vkCreateDescriptorSetLayout", r);
        VkPipelineLayoutCreateInfo plci = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, NULL, 0,
                                           1, &set_layout, 0, NULL};
        r = vkCreatePipelineLayout(dev, &plci, NULL, &layout);
        if (r != VK_SUCCESS) return fail("vkCreatePipelineLayout", r);
        VkShaderModuleCreateInfo smci = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, NULL, 0, len,
                                         code};
        r = vkCreateShaderModule(dev, &smci, NULL, &module);
        if (r != VK_SUCCESS) return fail("vkCreateShaderModule", r);
        VkComputePipelineCreateInfo cpci = {
            VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            NULL,
            VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR,
            {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, NULL, 0,
             VK_SHADER_STAGE_COMPUTE_BIT, module, "main", NULL},
            layout,
            VK_NULL_HANDLE,
            -1};
        r = vkCreateComputePipelines(dev, VK_NULL_HANDLE, 1, &cpci, NULL, &pipe);
        if (r != VK_SUCCESS) return fail("vkCreateComputePipelines", r);
        VkPipelineInfoKHR pinfo = {VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, NULL, pipe};
        uint32_t n_exec = 0;
        get_execs(dev, &pinfo, &n_exec, NULL);
        VkPipelineExecutablePropertiesKHR execs[8];
        if (n_exec > 8) n_exec = 8;
        for (uint32_t e = 0; e < n_exec; e++) {
            memset(&execs[e], 0, sizeof execs[e]);
            execs[e].sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR;
        }
        get_execs(dev, &pinfo, &n_exec, execs);
        for (uint32_t e = 0; e < n_exec; e++) {
            VkPipelineExecutableInfoKHR einfo = {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR,
                                                 NULL, pipe, e};
            uint32_t n_stat = 0;
            get_stats(dev, &einfo, &n_stat, NULL);
            VkPipelineExecutableStatisticKHR stats[MAX_STATS];
            if (n_stat > MAX_STATS) n_stat = MAX_STATS;
            for (uint32_t s = 0; s < n_stat; s++) {
                memset(&stats[s], 0, sizeof stats[s]);
                stats[s].sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR;
            }
            get_stats(dev, &einfo, &n_stat, stats);
            for (uint32_t s = 0; s < n_stat; s++) {
                printf("%.*s\t%s\t%s\t", (int)(strlen(name) - 4), name, execs[e].name,
                       stats[s].name);
                switch (stats[s].format) {
                case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
                    printf("%s\n", stats[s].value.b32 ? "true" : "false");
                    break;
                case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
                    printf("%lld\n", (long long)stats[s].value.i64);
                    break;
                case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
                    printf("%llu\n", (unsigned long long)stats[s].value.u64);
                    break;
                default:
                    printf("%g\n", stats[s].value.f64);
                }
            }
        }
        vkDestroyPipeline(dev, pipe, NULL);
        vkDestroyShaderModule(dev, module, NULL);
        vkDestroyPipelineLayout(dev, layout, NULL);
        vkDestroyDescriptorSetLayout(dev, set_layout, NULL);
        free(code);
    }
    vkDestroyDevice(dev, NULL);
    vkDestroyInstance(inst, NULL);
    return status;
}
