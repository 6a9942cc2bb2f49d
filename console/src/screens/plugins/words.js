// The plugin market's words: kinds, statuses and the capabilities a merchant grants, each
// explained in plain words (kernel/domain/src/plugin/manifest.rs, `Capability`).
export const CAPABILITIES = {
  en: {
    log: 'Write lines to its log, which you read on this page.',
    config: 'Read the configuration you set here.',
    kv: 'Keep its own working data in the shop’s storage (for example a fitted model).',
    clock: 'Read the current time.',
    'customers:read': 'Read any customer of the shop: profile, orders, behaviours, tags and scores.',
    'tags:write': 'Add and remove its own tags on customers (never other tags).',
    'scores:write': 'Set its own scores on customers.',
    'points:write': 'Award points to customers and claw them back.',
    'tiers:write': 'Move customers between membership tiers.',
    'events:emit': 'Emit its own plugin events, which journeys and other plugins can react to.',
    http: 'Call out to the internet, only to the hosts you grant below; a connector sends your customers’ messages there.',
  },
  'zh-CN': {
    log: '写入运行日志，您可在本页查看。',
    config: '读取您在此设置的配置。',
    kv: '在店铺存储中保存自己的工作数据（例如已拟合的模型）。',
    clock: '读取当前时间。',
    'customers:read': '读取店铺的任意客户：资料、订单、行为、标签和评分。',
    'tags:write': '为客户添加、移除它自己的标签（不能改动其他标签）。',
    'scores:write': '为客户设置它自己的评分。',
    'points:write': '给客户发放积分，或扣回积分。',
    'tiers:write': '调整客户的会员等级。',
    'events:emit': '发出它自己的插件事件，自动化营销和其他插件可据此响应。',
    http: '访问互联网，仅限您在下方授权的主机；渠道连接器会把客户的消息发送到那里。',
  },
};

export const KINDS = {
  en: { 'tag-rule': 'Tag rule', 'scoring-model': 'Scoring model', 'loyalty-scheme': 'Loyalty scheme', 'channel-connector': 'Channel connector' },
  'zh-CN': { 'tag-rule': '标签规则', 'scoring-model': '评分模型', 'loyalty-scheme': '积分方案', 'channel-connector': '渠道连接器' },
};

export const STATUSES = {
  en: { enabled: 'Enabled', disabled: 'Disabled', tripped: 'Tripped (breaker open)', none: 'Not enabled', running: 'Running', done: 'Done', failed: 'Failed' },
  'zh-CN': { enabled: '已启用', disabled: '已停用', tripped: '已熔断', none: '未启用', running: '运行中', done: '已完成', failed: '失败' },
};

export const LEVELS = {
  en: { debug: 'Debug', info: 'Info', warn: 'Warning', error: 'Error' },
  'zh-CN': { debug: '调试', info: '信息', warn: '警告', error: '错误' },
};

export function statusClass(status) {
  return status === 'enabled' || status === 'done' ? 'good' : status === 'tripped' || status === 'failed' ? 'bad' : status === 'running' ? 'warn' : '';
}
